"""Network faults: toxics of the userspace fault proxy, and a port blackhole with nftables.

There is no ``tc netem`` on this kernel, so latency, bandwidth, resets and the like are
applied by a TCP proxy put in front of a service port (:class:`Proxy`, made by the
``proxy`` fixture). Each toxic is a fault: a context manager recorded on the timeline
whose revert removes it. A port blackhole drops packets with an nftables rule inside a
network namespace (:class:`NetNamespace`, made by the ``netns`` fixture).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import json
import math
import os
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from . import proxy as _server
from .base import Fault, FaultError
from .journal import process_start

__all__ = [
    "bandwidth",
    "blackhole",
    "down",
    "latency",
    "limit_data",
    "port_blackhole",
    "reset_peer",
    "slicer",
    "timeout",
    "toxic",
]

STREAMS = ("upstream", "downstream", "both")
TOXICS = _server.TYPES
_T = TypeVar("_T")


class Proxy:
    """A fault proxy process in front of ``upstream``: connect to :attr:`port` instead."""

    def __init__(
        self,
        upstream: int | tuple[str, int] | Any,
        *,
        listen_port: int | None = None,
        name: str | None = None,
        start_timeout: float = 10.0,
    ) -> None:
        host, port = _upstream(upstream)
        if listen_port is not None:
            from ..targets.service import ServiceError, check_port_free

            try:
                check_port_free(listen_port, what="proxy listen_port")
            except ServiceError as exc:
                raise FaultError(str(exc)) from None
        self.upstream = (host, port)
        self.name = name or f"proxy-{port}"
        spec = {"upstream_host": host, "upstream_port": port, "listen_port": listen_port or 0}
        self._process = subprocess.Popen(
            [sys.executable, "-I", "-S", _server.__file__, json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,  # Ctrl-C is pytest's; the toxics are reverted before we close it
        )
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        first = self._readline(start_timeout)
        if first is None or first.get("event") != "listening":
            self.close()
            why = first.get("error") if first else f"no answer within {start_timeout:g}s"
            raise FaultError(f"fault proxy for {host}:{port} did not start: {why}")
        self.port = int(first["port"])
        self.host = "127.0.0.1"
        self.pid = self._process.pid
        self.start_ticks = process_start(self.pid)

    def _readline(self, timeout: float) -> dict[str, Any] | None:
        out = self._process.stdout
        assert out is not None
        ready, _, _ = select.select([out], [], [], timeout)
        if not ready:
            return None
        line = out.readline()
        return json.loads(line) if line else None

    def call(self, op: str, timeout: float = 5.0, **fields: Any) -> dict[str, Any]:
        """Send one command to the proxy process and return its answer (raises FaultError on failure)."""
        with self._lock:
            if self._process.poll() is not None or self._process.stdin is None:
                raise FaultError(f"{self.name}: the proxy process is not running")
            ident = next(self._ids)
            self._process.stdin.write(json.dumps({"id": ident, "op": op, **fields}) + "\n")
            self._process.stdin.flush()
            answer = self._readline(timeout)
        if answer is None:
            raise FaultError(f"{self.name}: no answer to {op!r} within {timeout:g}s")
        if not answer.get("ok"):
            raise FaultError(f"{self.name}: {op} failed: {answer.get('error')}")
        return answer

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def running(self) -> bool:
        return self._process.poll() is None

    def toxics(self) -> list[dict[str, Any]]:
        """The toxics the proxy process holds right now (asked of the process, not remembered here)."""
        return list(self.call("list")["toxics"])

    def stats(self) -> dict[str, Any]:
        return self.call("stats")

    def reset(self) -> None:
        """Remove every toxic (and re-enable a proxy that is down)."""
        self.call("reset")

    def close(self) -> None:
        """Stop the proxy: its toxics and connections go with it. Safe to call twice."""
        process = self._process
        if process.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    # -- toxics as faults --------------------------------------------------------

    def latency(self, latency: float, jitter: float = 0, **options: Any) -> Toxic:
        return globals()["latency"](self, latency, jitter, **options)  # type: ignore[no-any-return]

    def bandwidth(self, rate: float, **options: Any) -> Toxic:
        return globals()["bandwidth"](self, rate, **options)  # type: ignore[no-any-return]

    def down(self, **options: Any) -> Toxic:
        return globals()["down"](self, **options)  # type: ignore[no-any-return]

    def blackhole(self, **options: Any) -> Toxic:
        return globals()["blackhole"](self, **options)  # type: ignore[no-any-return]

    def reset_peer(self, timeout: float = 0, **options: Any) -> Toxic:
        return globals()["reset_peer"](self, timeout, **options)  # type: ignore[no-any-return]

    def timeout(self, timeout: float = 0, **options: Any) -> Toxic:
        return globals()["timeout"](self, timeout, **options)  # type: ignore[no-any-return]

    def slicer(self, average_size: int, size_variation: int = 0, delay: float = 0, **options: Any) -> Toxic:
        return globals()["slicer"](self, average_size, size_variation, delay, **options)  # type: ignore[no-any-return]

    def limit_data(self, bytes: int, **options: Any) -> Toxic:
        return globals()["limit_data"](self, bytes, **options)  # type: ignore[no-any-return]

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Proxy {self.address} -> {self.upstream[0]}:{self.upstream[1]}>"


def _upstream(upstream: Any) -> tuple[str, int]:
    if isinstance(upstream, tuple) and len(upstream) == 2:
        host, port = upstream
    elif isinstance(upstream, int) and not isinstance(upstream, bool):
        host, port = "127.0.0.1", upstream
    elif getattr(upstream, "port", None) is not None:
        host, port = "127.0.0.1", upstream.port
    else:
        raise FaultError(
            f"proxy upstream {upstream!r} is not accepted; use a port, (host, port) or a service with a port"
        )
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise FaultError(f"proxy upstream port {port!r} must be an integer between 1 and 65535")
    return str(host), port


# -- toxics --------------------------------------------------------------------------------------


class Toxic(Fault):
    """One toxic on a proxy, per direction; ``stream='both'`` adds one toxic per direction."""

    toxic_type: ClassVar[str] = ""
    default_stream: ClassVar[str] = "downstream"

    def __init__(
        self,
        proxy: Proxy,
        attributes: dict[str, float],
        *,
        stream: str | None = None,
        toxicity: float = 1.0,
        name: str | None = None,
        max_duration: Any = None,
    ) -> None:
        super().__init__(name=name, max_duration=max_duration)
        if not isinstance(proxy, Proxy):
            raise FaultError(f"faults.{self.kind}: needs a Proxy (from the proxy fixture), got {type(proxy).__name__}")
        stream = self.default_stream if stream is None else stream
        if stream not in STREAMS:
            raise FaultError(f"faults.{self.kind}: stream={stream!r} is not one of {', '.join(STREAMS)}")
        if isinstance(toxicity, bool) or not isinstance(toxicity, (int, float)) or not 0 <= toxicity <= 1:
            raise FaultError(f"faults.{self.kind}: toxicity={toxicity!r} must be a probability between 0 and 1")
        self.proxy = proxy
        self.stream = stream
        self.toxicity = float(toxicity)
        self.attributes = attributes
        self._names: list[str] = []

    @property
    def target(self) -> str:
        return f"{self.proxy.name} ({self.proxy.address} -> {self.proxy.upstream[0]}:{self.proxy.upstream[1]})"

    @property
    def lock_key(self) -> str:
        return f"proxy:{self.proxy.pid}:{self.proxy.port}"

    def _inject(self) -> None:
        streams = ["upstream", "downstream"] if self.stream == "both" else [self.stream]
        expires_at = time.time() + self.max_duration  # the proxy drops it by itself if pytest is gone
        for stream in streams:
            name = f"{self.kind}_{stream}_{uuid.uuid4().hex[:8]}"
            spec = {
                "name": name,
                "type": self.toxic_type,
                "stream": stream,
                "toxicity": self.toxicity,
                "attributes": self.attributes,
                "expires_at": expires_at,
            }
            self.proxy.call("add", toxic=spec)
            self._names.append(name)

    def _revert(self) -> None:
        names, self._names = self._names, []
        if names and self.proxy.running:
            for name in names:
                self.proxy.call("remove", name=name)

    def _undo_actions(self) -> list[dict[str, Any]]:
        """Should pytest die, the proxy exits on EOF; should it linger, recovery stops it."""
        return [{"op": "signal", "pid": self.proxy.pid, "start": self.proxy.start_ticks, "signal": 15}]

    def params(self) -> dict[str, Any]:
        return {**super().params(), "stream": self.stream, "toxicity": self.toxicity, **self.attributes}

    def describe(self) -> str:
        attrs = ", ".join(f"{k}={v:g}" for k, v in self.attributes.items())
        extra = f" {attrs}" if attrs else ""
        odds = f" toxicity {self.toxicity:g}" if self.toxicity < 1 else ""
        return f"{self.toxic_type}{extra} {self.stream} on {self.proxy.name}{odds}"


def _toxic_class(toxic_type: str, stream: str = "downstream") -> type[Toxic]:
    return type(
        f"{toxic_type.title().replace('_', '')}Toxic",
        (Toxic,),
        {"kind": toxic_type, "toxic_type": toxic_type, "default_stream": stream, "__module__": __name__},
    )


TOXIC_CLASSES: dict[str, type[Toxic]] = {
    t: _toxic_class(t, "both" if t == "blackhole" else "downstream") for t in TOXICS
}


def _nonneg(fault: str, name: str, value: Any, integer: bool = False) -> float:
    bad = isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0
    if not bad and integer and not float(value).is_integer():
        bad = True
    if bad:
        kind = "a whole number" if integer else "a number"
        raise FaultError(f"faults.{fault}: {name}={value!r} must be {kind} >= 0")
    return float(value)


def toxic(proxy: Proxy, type: str, attributes: dict[str, float] | None = None, **options: Any) -> Toxic:
    """Any Toxiproxy toxic by name: ``faults.toxic(proxy, "latency", {"latency": 100})``."""
    if type not in TOXIC_CLASSES:
        raise FaultError(f"faults.toxic: type={type!r} is not a toxic; accepted: {', '.join(TOXICS)}")
    return TOXIC_CLASSES[type](proxy, dict(attributes or {}), **options)


def latency(proxy: Proxy, latency: float, jitter: float = 0, **options: Any) -> Toxic:
    """Delay every chunk by ``latency`` ms (± ``jitter`` ms, uniform)."""
    ms = _nonneg("latency", "latency", latency)
    spread = _nonneg("latency", "jitter", jitter)
    if spread > ms:
        raise FaultError(f"faults.latency: jitter={jitter!r} must not exceed latency={latency!r}")
    return toxic(proxy, "latency", {"latency": ms, "jitter": spread}, **options)


def bandwidth(proxy: Proxy, rate: float, **options: Any) -> Toxic:
    """Limit throughput to ``rate`` KB/s (1 KB = 1000 bytes)."""
    if _nonneg("bandwidth", "rate", rate) == 0:
        raise FaultError("faults.bandwidth: rate=0 would stop all data; use faults.timeout or faults.blackhole")
    return toxic(proxy, "bandwidth", {"rate": float(rate)}, **options)


def down(proxy: Proxy, **options: Any) -> Toxic:
    """The proxy refuses new connections and drops open ones (the service is down)."""
    return toxic(proxy, "down", {}, **options)


def blackhole(proxy: Proxy, **options: Any) -> Toxic:
    """Accept connections and silently drop their data (both directions by default)."""
    return toxic(proxy, "blackhole", {}, **options)


def reset_peer(proxy: Proxy, timeout: float = 0, **options: Any) -> Toxic:
    """Reset connections (TCP RST) ``timeout`` ms after the toxic reaches them."""
    return toxic(proxy, "reset_peer", {"timeout": _nonneg("reset_peer", "timeout", timeout)}, **options)


def timeout(proxy: Proxy, timeout: float = 0, **options: Any) -> Toxic:
    """Stop all data; close the connection after ``timeout`` ms (0 = hold it open, silently)."""
    return toxic(proxy, "timeout", {"timeout": _nonneg("timeout", "timeout", timeout)}, **options)


def slicer(proxy: Proxy, average_size: int, size_variation: int = 0, delay: float = 0, **options: Any) -> Toxic:
    """Slice data into ``average_size`` ± ``size_variation`` byte pieces, ``delay`` µs apart."""
    size = _nonneg("slicer", "average_size", average_size, integer=True)
    variation = _nonneg("slicer", "size_variation", size_variation, integer=True)
    if size < 1 or variation >= size:
        raise FaultError(
            f"faults.slicer: average_size={average_size!r} must be >= 1 and size_variation={size_variation!r} below it"
        )
    pause = _nonneg("slicer", "delay", delay)
    return toxic(proxy, "slicer", {"average_size": size, "size_variation": variation, "delay": pause}, **options)


def limit_data(proxy: Proxy, bytes: int, **options: Any) -> Toxic:
    """Close the connection once ``bytes`` have passed in the toxic's direction."""
    return toxic(proxy, "limit_data", {"bytes": _nonneg("limit_data", "bytes", bytes, integer=True)}, **options)


# -- network namespaces and nftables -------------------------------------------------------------

_CLONE_NEWNET = 0x40000000


class NetNamespace:
    """A network namespace made for one test: its own loopback, invisible to the rest of the host."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or f"rz-{uuid.uuid4().hex[:10]}"
        self.created = False

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
        _run(["ip", "netns", "add", self.name], f"create network namespace {self.name}")
        self.created = True
        _run(["ip", "-n", self.name, "link", "set", "lo", "up"], f"bring up lo in {self.name}")
        return self

    def delete(self) -> None:
        if self.created:
            self.created = False
            subprocess.run(["ip", "netns", "delete", self.name], capture_output=True, timeout=10, check=False)

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


def _run(command: list[str], what: str, stdin: str | None = None) -> None:
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=10, check=False)
    if done.returncode != 0:
        raise FaultError(f"cannot {what}: {' '.join(command)}: {done.stderr.strip() or done.returncode}")


class PortBlackhole(Fault):
    """Drop every TCP packet to ``port`` with an nftables rule (SYNs too: connects hang, then time out)."""

    kind = "port_blackhole"
    needs_expiry_helper = True

    def __init__(
        self, port: int, *, netns: NetNamespace | str | None = None, name: str | None = None, max_duration: Any = None
    ) -> None:
        super().__init__(name=name, max_duration=max_duration)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise FaultError(f"faults.port_blackhole: port={port!r} must be an integer between 1 and 65535")
        if netns is None:
            raise FaultError(
                "faults.port_blackhole: netns= is required: a network namespace (the netns fixture makes one), "
                "or netns='host' to blackhole the port for every process on this machine"
            )
        self.port = port
        self.netns = netns.name if isinstance(netns, NetNamespace) else str(netns)
        self.table = f"resiliency_{uuid.uuid4().hex[:10]}"

    @property
    def target(self) -> str:
        return f"tcp port {self.port} in {'the host' if self.netns == 'host' else 'netns ' + self.netns}"

    def _prefix(self) -> list[str]:
        return [] if self.netns == "host" else ["ip", "netns", "exec", self.netns]

    def _prepare(self) -> None:
        why = NetNamespace.unavailable()
        if why:
            raise FaultError(f"faults.port_blackhole: {why}")
        if self.netns != "host" and not Path(f"/run/netns/{self.netns}").exists():
            raise FaultError(f"faults.port_blackhole: network namespace {self.netns!r} does not exist")

    def _inject(self) -> None:
        ruleset = (
            f"table inet {self.table} {{\n"
            "  chain input { type filter hook input priority -10; policy accept;\n"
            f"    tcp dport {self.port} drop\n"
            "  }\n"
            "}\n"
        )
        _run([*self._prefix(), "nft", "-f", "-"], f"add nftables table {self.table}", stdin=ruleset)

    def _revert(self) -> None:
        done = subprocess.run(
            [*self._prefix(), "nft", "delete", "table", "inet", self.table], capture_output=True, text=True, timeout=10
        )
        if done.returncode != 0 and "No such file" not in done.stderr:
            raise FaultError(f"cannot delete nftables table {self.table}: {done.stderr.strip()}")

    def _undo_actions(self) -> list[dict[str, Any]]:
        netns = None if self.netns == "host" else self.netns
        return [{"op": "nft_delete_table", "netns": netns, "family": "inet", "table": self.table}]

    def params(self) -> dict[str, Any]:
        return {**super().params(), "port": self.port, "netns": self.netns, "table": self.table}

    def describe(self) -> str:
        return f"blackhole {self.target}"


def port_blackhole(
    port: int, *, netns: NetNamespace | str | None = None, name: str | None = None, max_duration: Any = None
) -> PortBlackhole:
    """Drop TCP packets to ``port`` inside ``netns`` (root and nftables needed)."""
    return PortBlackhole(port, netns=netns, name=name, max_duration=max_duration)
