"""Loopback HTTP servers for the load tests: the orders convention, with exact faults.

``OrdersServer`` speaks the built-in scenario's convention (``POST /orders`` with
``{"key": ...}`` acknowledged by 201, ``GET /orders/<key>`` 200 or 404) over HTTP/1.1
keep-alive, one thread per connection. Its faults are exact so tests can compare a
measurement with the truth: ``refuse(seconds)`` closes the listener and every open
connection and reopens after exactly ``seconds``, recording both instants;
``lose(k)`` acknowledges the next ``k`` writes without storing them; ``hold()`` stores
every write but answers none until ``release()``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        store: OrdersServer = self.server.orders
        if self.path.startswith("/orders/"):
            key = self.path[len("/orders/") :]
            found = store.get(key)
            self._send(200 if found else 404, json.dumps({"key": key}).encode() if found else b"")
        else:
            self._send(200, b'{"ok":true}')

    def do_POST(self) -> None:
        store: OrdersServer = self.server.orders
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path != "/orders" or "key" not in body:
            self._send(400)
            return
        store.put(str(body["key"]))
        if not store.answering.is_set():
            with store._lock:
                store.held += 1
            store.answering.wait()
        self._send(201, b'{"ok":true}')


class OrdersServer:
    """A loopback orders store with exact refusal and write-loss faults."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.orders = self
        self._store: set[str] = set()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._to_lose = 0
        self.lost: list[str] = []
        self.writes = 0
        self.refused_at: float | None = None
        self.reopened_at: float | None = None
        self.reopened = threading.Event()
        self.answering = threading.Event()
        self.answering.set()
        self.held = 0  # writes stored and not answered while held
        self._closed = False
        self._open()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- store ---------------------------------------------------------------------

    def get(self, key: str) -> bool:
        with self._lock:
            return key in self._store

    def put(self, key: str) -> None:
        with self._lock:
            self.writes += 1
            if self._to_lose > 0:
                self._to_lose -= 1
                self.lost.append(key)
                return
            self._store.add(key)

    def keys(self) -> set[str]:
        with self._lock:
            return set(self._store)

    # -- faults ----------------------------------------------------------------------

    def lose(self, k: int) -> None:
        """Acknowledge the next ``k`` writes without storing them."""
        with self._lock:
            self._to_lose = k

    def hold(self) -> None:
        """Store every write but answer none until :meth:`release` (a server that stalls after committing)."""
        self.answering.clear()

    def release(self) -> None:
        self.answering.set()

    def refuse(self, seconds: float) -> None:
        """Refuse every connection for exactly ``seconds`` (listener and open connections closed)."""
        self.reopened.clear()
        self.refused_at = time.time()
        self._close_listener()
        with self._lock:
            connections, self._connections = set(self._connections), set()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        deadline = self.refused_at + seconds
        threading.Thread(target=self._reopen_at, args=(deadline,), daemon=True).start()

    def _reopen_at(self, deadline: float) -> None:
        while (left := deadline - time.time()) > 0.002:
            time.sleep(left - 0.002)
        while time.time() < deadline:
            pass
        self._open()
        self.reopened_at = time.time()
        self.reopened.set()

    # -- sockets ---------------------------------------------------------------------

    def _open(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(256)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, addr = listener.accept()
            except OSError:
                return
            with self._lock:
                self._connections.add(conn)
            threading.Thread(target=self._serve, args=(conn, addr), daemon=True).start()

    def _serve(self, conn: socket.socket, addr: Any) -> None:
        try:
            _Handler(conn, addr, self)  # type: ignore[arg-type]  # duck-typed: the handler reads only our attributes
        except OSError:
            pass
        finally:
            with self._lock:
                self._connections.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def close(self) -> None:
        self._closed = True
        self.answering.set()
        self._close_listener()
        with self._lock:
            connections, self._connections = set(self._connections), set()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
