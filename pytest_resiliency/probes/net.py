"""The network probes: an HTTP request and a TCP connect, each on a fresh connection.

:mod:`http.client` with a new connection each time, so a refused or dead server is seen at
once and no ``*_proxy`` environment variable reroutes it.
"""

from __future__ import annotations

import socket
import urllib.parse
from collections.abc import Container

from ..errors import ConfigError
from ..validate import duration
from ..validate import port as valid_port
from .base import DEFAULT_PROBE_TIMEOUT, Probe, ProbeFailed


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
        raise ConfigError(f"probes.http: {url!r} is not an http:// or https:// URL")
    seconds = duration(timeout, "timeout")
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
    valid_port(port, "probes.tcp: port")
    seconds = duration(timeout, "timeout")

    def check() -> None:
        with socket.create_connection((host, port), timeout=seconds):
            pass

    return Probe(name or f"tcp {host}:{port}", check)
