"""HttpUser and FastHttpUser locustfiles give the same evidence: error names and ledger statuses.

The built-in scenario runs on FastHttpUser (geventhttpclient) and users' locustfiles may use
either client. Each failure shape below is produced for real by a loopback server (or a closed
port), through a real locust subprocess, once per client.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pytest_resiliency.experiment import Experiment

pytestmark = pytest.mark.slow

CLIENT_TIMEOUT = 0.3
SLOW = 1.0  # the server's delay on /slow: well past the client's timeout


class _Shapes(BaseHTTPRequestHandler):
    """``/ok`` 201, ``/busy`` 503, ``/close`` closes without an answer, ``/slow`` answers after the client gave up."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/close":
            self.close_connection = True  # the request was read: its fate is unknown to the client
            return
        if self.path == "/slow":
            time.sleep(SLOW)
        status = {"/ok": 201, "/busy": 503}.get(self.path, 200)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def shapes() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Shapes)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


LOCUSTFILE = """
from locust import {base}, constant, task

from pytest_resiliency.load.sink import ledger

REFUSED = "http://127.0.0.1:{closed}/orders"
UNREACHED = "http://127.0.0.1:{full}/orders"  # a listener whose backlog is full: connecting times out


class Shapes({base}):
    wait_time = constant(0.05)
    network_timeout = connection_timeout = {timeout}  # FastHttpUser

    @task
    def shapes(self):
        for path in ("/ok", "/busy", "/close", "/slow", REFUSED, UNREACHED):
            kind = {{REFUSED: "refused", UNREACHED: "unreached"}}.get(path) or path.rsplit("/", 1)[-1]
            key = ledger.new_key(kind)
            with self.client.post(path, data="{{}}", name=kind, catch_response=True{timeout_kw}) as response:
                ledger.from_response(key, response)
        self.client.post("/busy", data="{{}}", name="plain-busy"{timeout_kw})  # locust's own failure, no ledger
"""

EXPECTED_STATUS = {
    "ok": "ok",
    "busy": "fail",
    "close": "indeterminate",  # the request was sent: it may have been applied
    "slow": "indeterminate",
    "refused": "fail",
    "unreached": "fail",  # the connection was never made: nothing was sent
}
EXPECTED_ERROR = {
    "POST ok": "",
    "POST busy": "HTTP 503",
    "POST plain-busy": "HTTP 503",
    "POST close": "RemoteDisconnected",
    "POST slow": "Timeout",
    "POST refused": "ConnectionRefusedError",
    "POST unreached": "ConnectTimeout",
}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A port that never completes a connection: a listener that accepts nothing, its backlog filled."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    probe = socket.socket()
    probe.settimeout(CLIENT_TIMEOUT)
    with pytest.raises(TimeoutError):  # the premise: connecting to it times out
        probe.connect(("127.0.0.1", port))
    probe.close()
    yield port
    for s in [*fillers, listener]:
        s.close()


@pytest.mark.parametrize("base", ["FastHttpUser", "HttpUser"])
def test_both_http_clients_give_the_same_error_names_and_ledger(
    base: str, shapes: str, full_backlog: int, load: Any, experiment: Experiment, tmp_path: Path
) -> None:
    locustfile = tmp_path / "shapes.py"
    timeout_kw = f", timeout={CLIENT_TIMEOUT}" if base == "HttpUser" else ""
    locustfile.write_text(
        LOCUSTFILE.format(
            base=base, closed=_closed_port(), full=full_backlog, timeout=CLIENT_TIMEOUT, timeout_kw=timeout_kw
        )
    )
    traffic = load(shapes, users=1, locustfile=locustfile)
    assert traffic.ingest.wait(lambda: sum(traffic.ingest.writes.values()) >= 12, 30), traffic.stats()
    traffic.stop()
    evidence = experiment.timeline.snapshot()
    # The one user's newest write may have been in flight at the stop: indeterminate, whatever its shape.
    newest = max(evidence.write_keys, key=lambda key: int(key.rsplit("-", 1)[1]))
    statuses: dict[str, set[str]] = {}
    for key, status in zip(evidence.write_keys, evidence.write_status, strict=True):
        if key != newest or status != 2:
            statuses.setdefault(key.split("-")[0], set()).add(("ok", "fail", "indeterminate")[status])
    assert statuses == {kind: {status} for kind, status in EXPECTED_STATUS.items()}
    errors: dict[str, set[str]] = {}
    for name, error in zip(evidence.op_name, evidence.op_error, strict=True):
        errors.setdefault(evidence.strings[name], set()).add(evidence.strings[error])
    assert errors == {name: {error} for name, error in EXPECTED_ERROR.items()}
