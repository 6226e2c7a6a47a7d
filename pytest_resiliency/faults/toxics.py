"""Network faults through the userspace fault proxy: the :class:`Proxy` client and its toxics.

There is no ``tc netem`` on this kernel, so latency, bandwidth, resets and the like are
applied by a TCP proxy put in front of a service port (the ``proxy`` fixture makes one; the
proxy itself runs :mod:`.proxy_server` in its own process). Each toxic is a fault: a context
manager recorded on the timeline whose revert removes it. Toxiproxy's names and semantics,
the package's units: durations (``"200ms"``, bare numbers are seconds), sizes (``"64KB"``)
and rates (``"1MB/s"``, bare numbers are bytes per second).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import select
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Never, Protocol

from .. import procfs, validate
from ..errors import ConfigError, FaultError
from . import proxy_server
from .base import Fault

__all__ = [
    "BandwidthToxic",
    "BlackholeToxic",
    "DownToxic",
    "LatencyToxic",
    "LimitDataToxic",
    "Proxy",
    "ResetPeerToxic",
    "SlicerToxic",
    "TimeoutToxic",
    "Toxic",
    "bandwidth",
    "down",
    "latency",
    "limit_data",
    "reset_peer",
    "slicer",
    "timeout",
    "toxic",
]

Stream = Literal["upstream", "downstream", "both"]
STREAMS: tuple[Stream, ...] = ("upstream", "downstream", "both")
TOXICS = proxy_server.TYPES
Duration = float | str
Size = int | str


class HasPort(Protocol):
    """A service (or any target) with a TCP port on this host."""

    @property
    def port(self) -> int | None: ...


Upstream = int | tuple[str, int] | HasPort


# -- toxics --------------------------------------------------------------------------------------


class Toxic(Fault):
    """One toxic on a proxy, per direction; ``stream='both'`` adds one toxic per direction.

    ``attributes`` travel to the proxy process in base units (seconds, bytes, bytes/s).
    """

    toxic_type: ClassVar[str] = ""
    default_stream: ClassVar[Stream] = "downstream"

    def __init__(
        self,
        proxy: Proxy,
        attributes: dict[str, float],
        *,
        stream: Stream | None = None,
        toxicity: float = 1.0,
        name: str | None = None,
        max_duration: float | str | None = None,
    ) -> None:
        super().__init__(name=name, max_duration=max_duration)
        if not isinstance(proxy, Proxy):
            raise ConfigError(f"faults.{self.kind}: needs a Proxy (from the proxy fixture), got {type(proxy).__name__}")
        self.stream: Stream = self.default_stream if stream is None else stream
        validate.one_of(self.stream, f"faults.{self.kind}: stream", STREAMS)
        odds: float = validate.instance(toxicity, f"faults.{self.kind}: toxicity", (int, float), "a probability")
        if not 0 <= odds <= 1:
            raise ConfigError(f"faults.{self.kind}: toxicity={odds!r} must be a probability between 0 and 1")
        self.proxy = proxy
        self.toxicity = float(odds)
        self.attributes = attributes
        self._names: list[str] = []

    @property
    def target(self) -> str:
        return f"{self.proxy.name} ({self.proxy.address} -> {self.proxy.upstream[0]}:{self.proxy.upstream[1]})"

    def identities(self) -> list[str]:
        return [self.proxy.identity]

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

    def _shown(self) -> str:
        return ", ".join(f"{k}={v:g}" for k, v in self.attributes.items())

    def describe(self) -> str:
        attrs = self._shown()
        extra = f" {attrs}" if attrs else ""
        odds = f" toxicity {self.toxicity:g}" if self.toxicity < 1 else ""
        return f"{self.toxic_type}{extra} {self.stream} on {self.proxy.name}{odds}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:g}ms"


class LatencyToxic(Toxic):
    kind = toxic_type = "latency"

    def _shown(self) -> str:
        return f"{_ms(self.attributes['latency'])} ±{_ms(self.attributes['jitter'])}"


class BandwidthToxic(Toxic):
    kind = toxic_type = "bandwidth"

    def _shown(self) -> str:
        return f"{self.attributes['rate']:g} B/s"


class DownToxic(Toxic):
    kind = toxic_type = "down"


class BlackholeToxic(Toxic):
    kind = toxic_type = "blackhole"
    default_stream = "both"


class ResetPeerToxic(Toxic):
    kind = toxic_type = "reset_peer"

    def _shown(self) -> str:
        return f"after {_ms(self.attributes['timeout'])}"


class TimeoutToxic(Toxic):
    kind = toxic_type = "timeout"

    def _shown(self) -> str:
        after = self.attributes["timeout"]
        return f"close after {_ms(after)}" if after else "never close"


class SlicerToxic(Toxic):
    kind = toxic_type = "slicer"


class LimitDataToxic(Toxic):
    kind = toxic_type = "limit_data"


TOXIC_CLASSES: dict[str, type[Toxic]] = {
    cls.toxic_type: cls
    for cls in (
        LatencyToxic,
        BandwidthToxic,
        DownToxic,
        BlackholeToxic,
        ResetPeerToxic,
        TimeoutToxic,
        SlicerToxic,
        LimitDataToxic,
    )
}

# Keyword names the documentation once showed with the old units (ms, µs, KB/s): refused, naming the new one.
RENAMED = {
    "latency_ms": "latency",
    "jitter_ms": "jitter",
    "rate_kb_s": "rate",
    "rate_kbps": "rate",
    "timeout_ms": "after",
    "timeout": "after",
    "delay_us": "delay",
}


def refuse_renamed(fault: str, renamed: Mapping[str, object]) -> None:
    """A clear error for an old keyword name (or an unknown one), instead of a bare TypeError."""
    for old, value in renamed.items():
        new = RENAMED.get(old)
        if new is None:
            raise TypeError(f"faults.{fault}() got an unexpected keyword argument {old!r}")
        raise ConfigError(
            f"faults.{fault}: {old}={validate.shown(value)} is no longer accepted; use {new}= with a duration, "
            f"size or rate ('100ms', '64KB', '1MB/s'); a bare number is seconds, bytes or bytes per second"
        )


def _duration(fault: str, name: str, value: object) -> float:
    return validate.duration(value, f"faults.{fault}: {name}")


def toxic(proxy: Proxy, type: str, attributes: dict[str, Any] | None = None, **options: Any) -> Toxic:
    """Any toxic by its Toxiproxy name, with the same arguments (and units) as its own function.

    ``faults.toxic(p, "latency", {"latency": "100ms"})`` is ``faults.latency(p, latency="100ms")``.
    """
    factories: dict[str, Any] = {
        "latency": latency,
        "bandwidth": bandwidth,
        "down": down,
        "blackhole": blackhole,
        "reset_peer": reset_peer,
        "timeout": timeout,
        "slicer": slicer,
        "limit_data": limit_data,
    }
    if type not in factories:
        raise ConfigError(f"faults.toxic: type={validate.shown(type)} is not a toxic; accepted: {', '.join(TOXICS)}")
    made: Toxic = factories[type](proxy, **dict(attributes or {}), **options)
    return made


def latency(
    proxy: Proxy,
    latency: Duration,
    jitter: Duration = 0,
    *,
    stream: Stream | None = None,
    toxicity: float = 1.0,
    name: str | None = None,
    max_duration: float | str | None = None,
    **renamed: Never,
) -> LatencyToxic:
    """Delay every chunk by ``latency`` (± ``jitter``, uniform): ``faults.latency(p, "200ms")``."""
    refuse_renamed("latency", renamed)
    delay = _duration("latency", "latency", latency)
    spread = _duration("latency", "jitter", jitter)
    if spread > delay:
        raise ConfigError(
            f"faults.latency: jitter={validate.shown(jitter)} must not exceed latency={validate.shown(latency)}"
        )
    return LatencyToxic(
        proxy,
        {"latency": delay, "jitter": spread},
        stream=stream,
        toxicity=toxicity,
        name=name,
        max_duration=max_duration,
    )


def bandwidth(
    proxy: Proxy,
    rate: float | str,
    *,
    stream: Stream | None = None,
    toxicity: float = 1.0,
    name: str | None = None,
    max_duration: float | str | None = None,
    **renamed: Never,
) -> BandwidthToxic:
    """Limit throughput to ``rate`` (``"64KB/s"``, ``"1MB/s"``; a bare number is bytes per second)."""
    refuse_renamed("bandwidth", renamed)
    if isinstance(rate, (int, float)) and not isinstance(rate, bool) and rate == 0:
        raise ConfigError("faults.bandwidth: rate=0 would stop all data; use faults.timeout or faults.blackhole")
    per_second = validate.rate(rate, "faults.bandwidth: rate")
    return BandwidthToxic(
        proxy, {"rate": float(per_second)}, stream=stream, toxicity=toxicity, name=name, max_duration=max_duration
    )


def down(
    proxy: Proxy,
    *,
    stream: Stream | None = None,
    toxicity: float = 1.0,
    name: str | None = None,
    max_duration: float | str | None = None,
) -> DownToxic:
    """The proxy refuses new connections and drops open ones (the service is down)."""
    return DownToxic(proxy, {}, stream=stream, toxicity=toxicity, name=name, max_duration=max_duration)


def reset_peer(
    proxy: Proxy,
    after: Duration = 0,
    *,
    stream: Stream | None = None,
    toxicity: float = 1.0,
    name: str | None = None,
    max_duration: float | str | None = None,
    **renamed: Never,
) -> ResetPeerToxic:
    """Reset connections (TCP RST) ``after`` the toxic reaches them (``"50ms"``; 0 = at once)."""
    refuse_renamed("reset_peer", renamed)
    return ResetPeerToxic(
        proxy,
        {"timeout": _duration("reset_peer", "after", after)},
        stream=stream,
        toxicity=toxicity,
        name=name,
        max_duration=max_duration,
    )


def timeout(
    proxy: Proxy,
    after: Duration = 0,
    *,
    stream: Stream | None = None,
    toxicity: float = 1.0,
    name: str | None = None,
    max_duration: float | str | None = None,
    **renamed: Never,
) -> TimeoutToxic:
    """Stop all data; close the connection ``after`` that long (0 = hold it open, silently)."""
    refuse_renamed("timeout", renamed)
    return TimeoutToxic(
        proxy,
        {"timeout": _duration("timeout", "after", after)},
        stream=stream,
        toxicity=toxicity,
        name=name,
        max_duration=max_duration,
    )


def slicer(
    proxy: Proxy,
    average_size: Size,
    size_variation: Size = 0,
    delay: Duration = 0,
    *,
    stream: Stream | None = None,
    toxicity: float = 1.0,
    name: str | None = None,
    max_duration: float | str | None = None,
    **renamed: Never,
) -> SlicerToxic:
    """Slice data into ``average_size`` ± ``size_variation`` byte pieces, ``delay`` apart (``"10ms"``)."""
    refuse_renamed("slicer", renamed)
    size = validate.size(average_size, "faults.slicer: average_size", positive=True)
    variation = validate.size(size_variation, "faults.slicer: size_variation")
    if variation >= size:
        raise ConfigError(
            f"faults.slicer: size_variation={validate.shown(size_variation)} must be below "
            f"average_size={validate.shown(average_size)}"
        )
    pause = _duration("slicer", "delay", delay)
    return SlicerToxic(
        proxy,
        {"average_size": float(size), "size_variation": float(variation), "delay": pause},
        stream=stream,
        toxicity=toxicity,
        name=name,
        max_duration=max_duration,
    )


def limit_data(
    proxy: Proxy,
    bytes: Size,
    *,
    stream: Stream | None = None,
    toxicity: float = 1.0,
    name: str | None = None,
    max_duration: float | str | None = None,
) -> LimitDataToxic:
    """Close the connection once ``bytes`` (``"1KB"``, or a number of bytes) have passed its way."""
    amount = validate.size(bytes, "faults.limit_data: bytes")
    return LimitDataToxic(
        proxy, {"bytes": float(amount)}, stream=stream, toxicity=toxicity, name=name, max_duration=max_duration
    )


def blackhole(
    proxy: Proxy,
    *,
    stream: Stream | None = None,
    toxicity: float = 1.0,
    name: str | None = None,
    max_duration: float | str | None = None,
) -> BlackholeToxic:
    """Accept connections and silently drop their data (both directions by default); ``faults.blackhole(p)``."""
    return BlackholeToxic(proxy, {}, stream=stream, toxicity=toxicity, name=name, max_duration=max_duration)


# The client is defined after the toxic functions: its methods are those functions.
class Proxy:
    """A fault proxy process in front of ``upstream``: connect to :attr:`port` instead."""

    def __init__(
        self,
        upstream: Upstream,
        *,
        listen_port: int | None = None,
        name: str | None = None,
        start_timeout: float | str = 10.0,
    ) -> None:
        host, port = _upstream(upstream)
        if listen_port is not None:
            from ..targets.service import ServiceError, check_port_free

            validate.port(listen_port, "proxy listen_port")
            try:
                check_port_free(listen_port, what="proxy listen_port")
            except ServiceError as exc:
                raise FaultError(str(exc)) from None
        wait = validate.duration(start_timeout, "proxy start_timeout", positive=True)
        self.upstream = (host, port)
        self.name = name or f"proxy-{port}"
        spec = {"upstream_host": host, "upstream_port": port, "listen_port": listen_port or 0}
        self._process = subprocess.Popen(
            [sys.executable, "-I", "-S", proxy_server.__file__, json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,  # Ctrl-C is pytest's; the toxics are reverted before we close it
        )
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        first = self._readline(wait)
        if first is None or first.get("event") != "listening":
            self.close()
            why = first.get("error") if first else f"no answer within {wait:g}s"
            raise FaultError(f"fault proxy for {host}:{port} did not start: {why}")
        self.port = int(first["port"])
        self.host = "127.0.0.1"
        self.pid = self._process.pid
        self.start_ticks = procfs.start_time(self.pid)

    @property
    def identity(self) -> str:
        """``proxy PID@START``: the proxy process, however the toxics reach it."""
        return f"proxy {self.pid}@{self.start_ticks}"

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

    # -- toxics as methods: p.latency("100ms") is faults.latency(p, "100ms"), same signature --------

    latency = latency
    bandwidth = bandwidth
    down = down
    blackhole = blackhole
    reset_peer = reset_peer
    timeout = timeout
    slicer = slicer
    limit_data = limit_data

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Proxy {self.address} -> {self.upstream[0]}:{self.upstream[1]}>"


def _upstream(upstream: object) -> tuple[str, int]:
    if isinstance(upstream, tuple) and len(upstream) == 2:
        host, port = upstream
    elif isinstance(upstream, int) and not isinstance(upstream, bool):
        host, port = "127.0.0.1", upstream
    elif getattr(upstream, "port", None) is not None:
        host, port = "127.0.0.1", getattr(upstream, "port")  # noqa: B009 - any object with a port
    else:
        raise ConfigError(
            f"proxy upstream {validate.shown(upstream)} is not accepted; "
            "use a port, (host, port) or a service with a port"
        )
    return str(host), validate.port(port, "proxy upstream port")
