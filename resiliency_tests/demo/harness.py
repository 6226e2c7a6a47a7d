"""Starting demo processes and talking to them from tests, without any plugin fixture.

The experiments run the demo under the plugin's ``service`` supervisor; the demo's own
tests (``tests/test_demo*.py``) and the throughput benchmark use this small harness.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MAIN = Path(__file__).resolve().parent / "__main__.py"


def command(role: str, *args: str) -> list[str]:
    """The argv that runs a demo process: ``command("orders", "--durability", "fsync")``."""
    if role not in ("orders", "ledger", "front"):
        raise ValueError(f"demo role {role!r} is not one of orders, ledger, front")
    return [sys.executable, str(MAIN), role, *args]


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port that was free a moment ago and not handed out before by this process.

    For processes that must come back on the same port after a crash. The kernel often
    returns the same ephemeral port twice in a row, hence the memory of earlier answers.
    """
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            number = int(sock.getsockname()[1])
        if number not in _HANDED_OUT:
            _HANDED_OUT.add(number)
            return number
    raise RuntimeError("no free port found in 100 tries")


class DemoProcess:
    """One demo process on a fixed port; ``kill()`` and ``start()`` again to crash and recover."""

    def __init__(self, role: str, *args: str, port: int | None = None, log: Path | None = None) -> None:
        self.role = role
        self.args = list(args)
        self.port = port or free_port()
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, timeout: float = 10.0) -> DemoProcess:
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError(f"demo {self.role} on port {self.port} is already running (pid {self.proc.pid})")
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115 (handed to the child)
        try:
            self.proc = subprocess.Popen(
                command(self.role, "--port", str(self.port), *self.args),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        finally:
            if self.log:
                out.close()  # type: ignore[union-attr]
        # the front forwards /health to the primary: only the others answer with their own pid
        wait_healthy(self.url, timeout, self.proc, check_pid=self.role != "front")
        return self

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to flush or snapshot."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> DemoProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_healthy(
    url: str, timeout: float = 10.0, proc: subprocess.Popen[bytes] | None = None, check_pid: bool = True
) -> dict[str, Any]:
    """Poll ``GET /health`` until 200 (bounded by ``timeout``); fail fast if the process exited."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"demo process exited with {proc.returncode} before it was healthy at {url}")
        try:
            status, body = request(url, "GET", "/health", timeout=0.5)
            if status == 200 and check_pid and proc is not None and body.get("pid") != proc.pid:
                raise RuntimeError(f"{url} is answered by pid {body.get('pid')}, not {proc.pid}: port taken {body}")
            if status == 200:
                return dict(body)
        except OSError as exc:
            last = exc
        time.sleep(0.02)
    raise TimeoutError(f"{url}/health not healthy within {timeout}s (last error: {last})")


def request(url: str, method: str, path: str, body: Any = None, timeout: float = 2.0) -> tuple[int, Any]:
    """One request on a fresh connection: (status, decoded JSON body or text)."""
    host, _, port = url.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        payload = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json"} if payload else {}
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    with contextlib.suppress(ValueError):
        return response.status, json.loads(data)
    return response.status, data.decode(errors="replace")


def present(url: str, keys: list[str]) -> set[str]:
    """Bulk read-back through ``POST /orders/_lookup`` (the reader for ``verify_writes``)."""
    found: set[str] = set()
    for i in range(0, len(keys), 5000):
        status, body = request(url, "POST", "/orders/_lookup", {"keys": keys[i : i + 5000]}, timeout=10)
        if status != 200:
            raise RuntimeError(f"lookup at {url} answered {status}: {body}")
        found.update(body["present"])
    return found


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
