"""A loopback HTTP server whose outages are set exactly: the ground truth of the benchmarks.

``mode="503"`` answers 503 while broken; ``mode="refuse"`` closes the listening socket, so
connections are refused, and rebinds the same port on repair; ``mode="hang"`` holds every
request until the repair and answers it then (a paused process, an election): blocking
clients time out, or get an answer sent long before it. ``lose_last(k)`` forgets the
last ``k`` acknowledged writes, as a crash that loses an unsynced tail would. ``ack_delay``
answers each write that long after storing it (writes are in flight at any moment).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: GroundTruthServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients cut off by a refusal outage reset their connections: expected, not news."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _reply(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        owner = self.server.owner
        if owner.mode == "hang":
            owner.repaired.wait()
        if owner.broken:
            self._reply(503)
        elif self.path.startswith("/orders/"):
            self._reply(200 if self.path[len("/orders/") :] in owner.store else 404)
        else:
            self._reply(200, b"ok")

    def do_POST(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
        if owner.broken:
            self._reply(503)
            return
        with owner.lock:
            owner.store[body["key"]] = time.time()
        if owner.ack_delay:
            time.sleep(owner.ack_delay)  # stored, answered later: a write in flight for that long
        self._reply(201)

    def log_message(self, *args: Any) -> None:
        pass


class GroundTruthServer:
    def __init__(self, mode: str = "503", ack_delay: float = 0.0) -> None:
        if mode not in ("503", "refuse", "hang"):
            raise ValueError(f"mode {mode!r}: use '503', 'refuse' or 'hang'")
        self.mode = mode
        self.ack_delay = ack_delay  # seconds between storing a write and acknowledging it
        self.broken = False
        self.repaired = threading.Event()
        self.repaired.set()
        self.repaired_at: float | None = None
        self.lock = threading.Lock()
        self.store: dict[str, float] = {}
        self._server: _Server | None = None
        self.port = 0
        self._start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _start(self) -> None:
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.owner = self
        self.port = server.server_port
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
        self._server = server

    def _stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def break_(self) -> None:
        if self.mode == "refuse":
            self._stop()
        elif self.mode == "hang":
            self.repaired.clear()
        else:
            self.broken = True

    def fix(self) -> None:
        """Repair; ``repaired_at`` is the truth: the instant the service answers again."""
        if self.mode == "refuse":
            self._start()
        elif self.mode == "503":
            self.broken = False
        self.repaired_at = time.time()
        self.repaired.set()

    def lose_last(self, k: int) -> list[str]:
        """Forget the ``k`` most recently acknowledged writes; returns their keys."""
        with self.lock:
            newest = sorted(self.store, key=self.store.__getitem__)[-k:] if k else []
            for key in newest:
                del self.store[key]
        return newest

    def close(self) -> None:
        self.repaired.set()
        self._stop()
