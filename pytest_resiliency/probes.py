"""Probes: single health checks that ``experiment.monitor(probe, every=...)`` turns into evidence.

A probe is a callable that returns normally when the check passes and raises (or returns
``False``) when it fails; the exception text becomes the operation's error. The built-in
HTTP probe uses :mod:`http.client` with a fresh connection each time, so a refused or
dead server is seen at once and no ``*_proxy`` environment variable reroutes it.
"""

from __future__ import annotations

import importlib
import socket
import time
import urllib.parse
from collections.abc import Callable, Container
from typing import Any

from .budget import parse_duration

DEFAULT_PROBE_TIMEOUT = 1.0


class ProbeFailed(Exception):
    """The check ran and the answer was wrong (bad status, unexpected body)."""


class Probe:
    """A named check. Call it to run it once; it raises on failure."""

    def __init__(self, name: str, check: Callable[[], Any]) -> None:
        self.name = name
        self._check = check

    def __call__(self) -> None:
        if self._check() is False:
            raise ProbeFailed(f"{self.name} returned False")

    def __repr__(self) -> str:
        return f"<Probe {self.name}>"


def http(
    url: str,
    *,
    status: int | Container[int] = range(200, 400),
    timeout: float | str = DEFAULT_PROBE_TIMEOUT,
    method: str = "GET",
    body_contains: str | None = None,
    name: str | None = None,
) -> Probe:
    """Passes when ``method url`` answers with an accepted status (default 2xx/3xx) in time."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"probes.http: {url!r} is not an http:// or https:// URL")
    seconds = parse_duration(timeout, "timeout")
    accepted: Container[int] = {status} if isinstance(status, int) else status
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    import http.client as _http_client  # here, not at module level: it costs pytest start-up ~5 ms

    connection_class = _http_client.HTTPSConnection if parts.scheme == "https" else _http_client.HTTPConnection

    def check() -> None:
        conn = connection_class(parts.hostname or "", parts.port, timeout=seconds)
        try:
            conn.request(method, path, headers={"Connection": "close"})
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        if response.status not in accepted:
            raise ProbeFailed(f"HTTP {response.status}")
        if body_contains is not None and body_contains.encode() not in body:
            raise ProbeFailed(f"body does not contain {body_contains!r}")

    return Probe(name or f"http {method} {url}", check)


def tcp(host: str, port: int, *, timeout: float | str = DEFAULT_PROBE_TIMEOUT, name: str | None = None) -> Probe:
    """Passes when a TCP connection to ``host:port`` is accepted in time."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"probes.tcp: port {port!r} must be an integer between 1 and 65535")
    seconds = parse_duration(timeout, "timeout")

    def check() -> None:
        with socket.create_connection((host, port), timeout=seconds):
            pass

    return Probe(name or f"tcp {host}:{port}", check)


def call(fn: Callable[[], Any], *, name: str | None = None) -> Probe:
    """Any callable as a probe: it fails when it raises or returns ``False``."""
    if not callable(fn):
        raise ValueError(f"probes.call needs a callable, got {type(fn).__name__}")
    return Probe(name or str(getattr(fn, "__name__", "call")), fn)


def as_probe(probe: Probe | Callable[[], Any]) -> Probe:
    return probe if isinstance(probe, Probe) else call(probe)


def run_once(probe: Probe) -> tuple[float, float, bool, str | None]:
    """Run a probe: (start, latency, ok, error). Never raises for a failing check."""
    start = time.time()
    began = time.perf_counter()
    try:
        probe()
    except Exception as exc:  # any failure of the check is evidence, not a crash
        return start, time.perf_counter() - began, False, _describe_error(exc)
    return start, time.perf_counter() - began, True, None


def _describe_error(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_EXTENSIONS = ("pytest_resiliency.targets.probes", "pytest_resiliency.aws.probes", "pytest_resiliency.prometheus")


def __getattr__(name: str) -> Any:
    """Probes of the other capabilities (process, CloudWatch alarm...), imported on first use."""
    if name.startswith("_"):
        raise AttributeError(name)
    for module_name in _EXTENSIONS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        if name in getattr(module, "__all__", ()):
            return getattr(module, name)
    raise AttributeError(f"pytest_resiliency.probes has no probe {name!r}")
