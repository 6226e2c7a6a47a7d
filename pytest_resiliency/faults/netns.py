"""Network namespaces made for one test: their own loopback, invisible to the rest of the host.

The ``netns`` fixture makes one; services can run inside it and :mod:`.nftables` blackholes
ports in it. Each namespace is in the undo log while it exists, so a SIGKILLed pytest leaves
it to ``pytest --resiliency-recover`` instead of leaving it forever.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import FaultError
from . import undo

__all__ = ["NetNamespace", "run"]

_T = TypeVar("_T")
# No expiry helper deletes a namespace (a test may use it for as long as it runs); recovery does.
LIFETIME = 86_400.0
_CLONE_NEWNET = 0x40000000


class NetNamespace:
    """A network namespace made for one test: its own loopback, invisible to the rest of the host."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or f"rz-{uuid.uuid4().hex[:10]}"
        self.created = False
        self._entry: undo.Entry | None = None

    @staticmethod
    def unavailable() -> str | None:
        """Why namespaces with nftables cannot be used here, or None when they can."""
        if os.geteuid() != 0:
            return f"network namespaces and nftables need root (running as uid {os.geteuid()})"
        missing = [tool for tool in ("ip", "nft") if shutil.which(tool) is None]
        if missing:
            return f"{' and '.join(missing)} not installed (apt install iproute2 nftables)"
        return None

    def create(self) -> NetNamespace:
        why = self.unavailable()
        if why:
            raise FaultError(f"netns {self.name}: {why}")
        # In the undo log first: a SIGKILLed pytest leaves the namespace to --resiliency-recover.
        self._entry = undo.Entry.create(
            "netns", f"netns {self.name}", f"network namespace {self.name}", time.time() + LIFETIME, None
        )
        self._entry.set_undo([{"op": "netns_delete", "name": self.name}])
        try:
            run(["ip", "netns", "add", self.name], f"create network namespace {self.name}")
            self.created = True
            run(["ip", "-n", self.name, "link", "set", "lo", "up"], f"bring up lo in {self.name}")
        except BaseException:
            self.delete()
            raise
        return self

    def delete(self) -> None:
        if self.created:
            self.created = False
            subprocess.run(["ip", "netns", "delete", self.name], capture_output=True, timeout=10, check=False)
        entry, self._entry = self._entry, None
        if entry is not None:
            entry.remove()

    def exec_prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def run(self, fn: Callable[[], _T]) -> _T:
        """Call ``fn`` in a thread that entered this namespace (sockets it makes belong to it)."""
        libc = ctypes.CDLL(None, use_errno=True)
        box: dict[str, Any] = {}

        def inside() -> None:
            try:
                fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
                try:
                    if libc.setns(fd, _CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), f"setns into {self.name} failed")
                finally:
                    os.close(fd)
                box["value"] = fn()
            except BaseException as exc:
                box["error"] = exc

        thread = threading.Thread(target=inside, name=f"netns-{self.name}")
        thread.start()
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["value"]  # type: ignore[no-any-return]

    def connect(self, port: int, timeout: float = 1.0) -> None:
        """Open (and close) a TCP connection to 127.0.0.1:port inside the namespace."""

        def attempt() -> None:
            with socket.create_connection(("127.0.0.1", port), timeout=timeout):
                pass

        self.run(attempt)

    def nft_tables(self) -> list[str]:
        done = subprocess.run(
            [*self.exec_prefix(), "nft", "list", "tables"], capture_output=True, text=True, timeout=10, check=False
        )
        return [line.split()[-1] for line in done.stdout.splitlines() if line.startswith("table")]

    def __repr__(self) -> str:
        return f"<NetNamespace {self.name}>"


def run(command: list[str], what: str, stdin: str | None = None) -> None:
    """Run an ``ip``/``nft`` command; a failure is a :class:`FaultError` saying what could not be done."""
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=10, check=False)
    if done.returncode != 0:
        raise FaultError(f"cannot {what}: {' '.join(command)}: {done.stderr.strip() or done.returncode}")
