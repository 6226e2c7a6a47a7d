"""HAProxy in front of N backends: health checks (interval, fall, rise), retries and redispatch.

What to expect when a backend dies (and what the example suite checks):

* without redispatch, requests routed to the dead backend fail until ``fall`` consecutive
  checks, ``inter`` apart, have failed: RTO ≈ ``inter x fall`` (between ``(fall - 1) x inter``
  and ``fall x inter`` plus a check's duration, depending on the phase of the checks);
* with ``redispatch=True``, a request whose connection fails is retried on another server
  (``option redispatch 1``, ``retry-on conn-failure empty-response``): clients see no failure.
  A retry after an empty response may apply a non-idempotent request twice: fine for
  keyed, idempotent writes, a real caveat otherwise.

The log's "Server be/sN is DOWN" line, with HAProxy's own microsecond timestamp, is the truth.
"""

from __future__ import annotations

import datetime as _dt
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Unpack

from ...errors import ConfigError
from ...validate import count, duration, one_of
from ...validate import port as valid_port
from ..service import PassThroughOptions, Service
from . import LogEvent, ServerTarget, require

PACKAGE = "haproxy"
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)([+-]\d\d:\d\d|Z) ")
_STATE = re.compile(r"Server (\S+)/(\S+) is (DOWN|UP)")
MODES = ("http", "tcp")


def log_time(line: str) -> float | None:
    """Epoch seconds of an HAProxy ``format iso`` log line (``2026-11-29T15:25:26.053162+00:00 ...``)."""
    found = _STAMP.match(line)
    if not found:
        return None
    return _dt.datetime.fromisoformat(found.group(1) + found.group(2).replace("Z", "+00:00")).timestamp()


def _backend_port(backend: Any) -> int:
    port = backend.port if isinstance(backend, Service) else getattr(getattr(backend, "process", None), "port", backend)
    try:
        return valid_port(port, "haproxy: backend port")
    except ConfigError:
        raise ConfigError(f"haproxy: backend {backend!r} must be a service (with a port) or a port number") from None


class HAProxy(ServerTarget):
    """A supervised ``haproxy`` in front of ``backends``; create it with the ``haproxy_server`` fixture."""

    def __init__(
        self,
        service: Any,
        data_dir: Path,
        backends: Sequence[Any],
        *,
        mode: str = "http",
        inter: float | str = "200ms",
        fall: int = 3,
        rise: int = 2,
        redispatch: bool = False,
        retries: int | None = None,
        balance: str = "roundrobin",
        connect_timeout: float | str = "1s",
        server_timeout: float | str = "10s",
        name: str = "haproxy",
        **options: Unpack[PassThroughOptions],
    ) -> None:
        one_of(mode, "haproxy: mode", MODES)
        if not backends:
            raise ConfigError("haproxy: backends=[] names no backend; pass services or ports")
        count(fall, "haproxy: fall", 1)
        count(rise, "haproxy: rise", 1)
        inter_ms = round(duration(inter, "inter") * 1000)
        if inter_ms < 10:
            raise ConfigError(f"haproxy: inter={inter!r} must be at least 10ms")
        binary = require("haproxy", PACKAGE)
        self.name = name
        self.backends = list(backends)
        self.inter = inter_ms / 1000
        self.fall = fall
        self.rise = rise
        self.redispatch = redispatch
        self.admin_socket = data_dir / "admin.sock"
        data_dir.mkdir(parents=True, exist_ok=True)
        retry_count = (3 if redispatch else 0) if retries is None else retries
        lines = [
            "global",
            "    log stdout format iso local0 info",
            f"    stats socket {self.admin_socket} mode 600 level admin",
            "defaults",
            f"    mode {mode}",
            "    log global",
            f"    timeout connect {round(duration(connect_timeout, 'connect_timeout') * 1000)}ms",
            "    timeout client 30s",
            f"    timeout server {round(duration(server_timeout, 'server_timeout') * 1000)}ms",
            f"    retries {retry_count}",
        ]
        if redispatch:
            lines += ["    option redispatch 1"]
            if mode == "http":
                # A request can be replayed only when HAProxy holds all of it: buffer the body too.
                lines += ["    retry-on conn-failure empty-response response-timeout", "    option http-buffer-request"]
        lines += [
            "backend be",
            f"    balance {balance}",
            f"    default-server inter {inter_ms}ms fall {fall} rise {rise}",
        ]
        self.server_names = [f"s{i + 1}" for i in range(len(self.backends))]
        for server, backend in zip(self.server_names, self.backends, strict=True):
            lines.append(f"    server {server} 127.0.0.1:{_backend_port(backend)} check")
        lines += ["frontend fe", "    bind 127.0.0.1:{port}", "    default_backend be", ""]
        config = data_dir / "haproxy.cfg"
        self.service: Service = service.define(
            [binary, "-db", "-f", str(config)],
            name=name,
            ready=self._ready,
            files={config: "\n".join(lines)},
            stop_signal="SIGUSR1",  # soft stop: finish the requests in flight
            **options,
        )
        self.config = self.service.files[config]

    def _ready(self) -> None:
        """Ready when the frontend accepts and the admin socket answers: HAProxy binds them one by one."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2):
            pass
        if not self.states():
            raise ConnectionError("haproxy: the admin socket lists no backend server yet")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def server(self, backend: Any) -> str:
        """HAProxy's name (``s1``...) of a backend given as the service or port it was made with."""
        for server, candidate in zip(self.server_names, self.backends, strict=True):
            if candidate is backend or _backend_port(candidate) == _backend_port(backend):
                return server
        raise KeyError(f"haproxy: {backend!r} is not one of its backends")

    def states(self) -> dict[str, str]:
        """Each server's operational state from the admin socket: ``UP``, ``DOWN``, ``MAINT``..."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(2)
            sock.connect(str(self.admin_socket))
            sock.sendall(b"show stat\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        header, *rows = data.decode().splitlines()
        columns = header.lstrip("# ").split(",")
        found = {}
        for row in rows:
            values = dict(zip(columns, row.split(","), strict=False))
            if values.get("pxname") == "be" and values.get("svname") in self.server_names:
                found[values["svname"]] = values.get("status", "")
        return found

    def reader(self, keys: Iterable[str], path: str = "/orders/{key}") -> list[str]:
        """For ``experiment.verify_writes`` when the backends share a store: ``GET path`` through
        the balancer, 200 = present, 404 = absent; anything else raises (it cannot tell)."""
        found = []
        for key in keys:
            url = self.url + path.replace("{key}", urllib.parse.quote(key, safe=""))
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    response.read()
                    found.append(key)
            except urllib.error.HTTPError as exc:
                if exc.code != 404:
                    raise RuntimeError(
                        f"haproxy reader: GET {url} answered HTTP {exc.code}; expected 200 or 404"
                    ) from None
        return found

    def truth(self) -> list[LogEvent]:
        """HAProxy's own "Server be/sN is DOWN / UP" log lines, with its microsecond timestamps."""
        events = []
        for line in self.service.log_lines(_STATE):
            at = log_time(line.text)
            found = _STATE.search(line.text)
            if at is not None and found:
                events.append(LogEvent(f"{found.group(2)} {found.group(3)}", at, found.group(2), line.text))
        return events

    def __repr__(self) -> str:
        return f"<HAProxy {self.url} backends={self.server_names} inter={self.inter:g}s fall={self.fall}>"
