"""A minimal asyncio HTTP/1.1 server and keep-alive client, standard library only.

``http.server`` manages a few hundred requests a second; the load must never be limited
by the demo, so this speaks just enough HTTP/1.1 (Content-Length bodies, keep-alive, one
request at a time per connection) straight on :class:`asyncio.Protocol`, which serves a
few thousand requests a second on one core.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

MAX_HEADER = 16 * 1024
MAX_BODY = 1024 * 1024
REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    507: "Insufficient Storage",
}


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON; an empty body is ``{}``. Raises :class:`HttpError` 400 when malformed."""
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise HttpError(400, f"body is not JSON: {exc}") from None


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self, keep_alive: bool) -> bytes:
        if isinstance(self.body, bytes):
            payload, ctype = self.body, self.headers.get("Content-Type", "application/octet-stream")
        elif isinstance(self.body, str):
            payload, ctype = self.body.encode(), self.headers.get("Content-Type", "text/plain; charset=utf-8")
        else:
            payload, ctype = json.dumps(self.body, separators=(",", ":")).encode(), "application/json"
        head = [f"HTTP/1.1 {self.status} {REASONS.get(self.status, 'Status')}", f"Content-Type: {ctype}"]
        head += [f"{k}: {v}" for k, v in self.headers.items() if k != "Content-Type"]
        head += [f"Content-Length: {len(payload)}", "Connection: " + ("keep-alive" if keep_alive else "close")]
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload


class HttpError(Exception):
    """Raised by a handler to answer ``status`` with ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


Handler = Callable[[Request], "Response | Awaitable[Response]"]


class _Connection(asyncio.Protocol):
    """One client connection: parse, dispatch, answer in order (no pipelining overlap)."""

    def __init__(self, handler: Handler, connections: set[_Connection]) -> None:
        self.handler = handler
        self.connections = connections
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False
        self.pending: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._process()

    def _process(self) -> None:
        while self.transport is not None and not self.busy:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEADER:
                    self._send(Response(413, {"error": "headers too large"}), keep_alive=False)
                return
            try:
                request, keep_alive, consumed = self._parse(end)
            except HttpError as exc:
                self._send(Response(exc.status, {"error": exc.message}), keep_alive=False)
                return
            if request is None:
                return  # body not complete yet
            del self.buffer[:consumed]
            try:
                result = self.handler(request)
            except HttpError as exc:
                result = Response(exc.status, {"error": exc.message})
            except Exception as exc:  # a bug in a handler is a 500, never a dropped connection
                result = Response(500, {"error": f"{type(exc).__name__}: {exc}"})
            if isinstance(result, Response):
                self._send(result, keep_alive)
            else:
                self.busy = True
                self.pending = asyncio.ensure_future(self._finish(result, keep_alive))

    async def _finish(self, pending: Awaitable[Response], keep_alive: bool) -> None:
        try:
            result = await pending
        except HttpError as exc:
            result = Response(exc.status, {"error": exc.message})
        except Exception as exc:
            result = Response(500, {"error": f"{type(exc).__name__}: {exc}"})
        self.busy = False
        self._send(result, keep_alive)
        self._process()

    def _parse(self, end: int) -> tuple[Request | None, bool, int]:
        head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        parts = head[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise HttpError(400, f"bad request line {head[0][:80]!r}")
        method, target, version = parts
        headers = {}
        for line in head[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise HttpError(400, "bad Content-Length") from None
        if length > MAX_BODY or length < 0:
            raise HttpError(413, f"body of {length} bytes is over {MAX_BODY}")
        if "chunked" in headers.get("transfer-encoding", ""):
            raise HttpError(400, "chunked bodies are not supported; send Content-Length")
        total = end + 4 + length
        if len(self.buffer) < total:
            return None, False, 0
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        path, _, query = target.partition("?")
        body = bytes(self.buffer[end + 4 : total])
        return Request(method, path, query, headers, body), keep_alive, total

    def _send(self, response: Response, keep_alive: bool) -> None:
        if self.transport is None:
            return
        self.transport.write(response.encode(keep_alive))
        if not keep_alive:
            self.transport.close()
            self.transport = None


class Server:
    """Serves ``handler`` on ``host:port`` (port 0 picks a free one; see :attr:`port`)."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler = handler
        self.host = host
        self.requested_port = port
        self.port = 0
        self.connections: set[_Connection] = set()
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self.handler, self.connections),
            self.host,
            self.requested_port,
            reuse_address=True,
            backlog=1024,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for conn in list(self.connections):
                if conn.transport is not None:
                    conn.transport.close()
            await self._server.wait_closed()


class ClientError(Exception):
    """The upstream could not be reached or answered garbage (connection refused, reset, timeout)."""


class Client:
    """A keep-alive HTTP/1.1 client pool to one upstream ``host:port`` (the dependency, the primary)."""

    def __init__(self, host: str, port: int, timeout: float = 1.0, size: int = 16) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.size = size
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        """One request; raises :class:`ClientError` for any transport failure or timeout."""
        try:
            return await asyncio.wait_for(self._request(method, path, body), self.timeout)
        except TimeoutError:
            raise ClientError(
                f"{method} {path}: no answer from {self.host}:{self.port} within {self.timeout}s"
            ) from None
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            raise ClientError(f"{method} {path} to {self.host}:{self.port}: {type(exc).__name__}: {exc}") from None

    async def _request(self, method: str, path: str, body: Any) -> tuple[int, bytes]:
        payload = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(payload)}\r\n"
        if payload:
            head += "Content-Type: application/json\r\n"
        reused = bool(self._idle)
        reader, writer = self._idle.pop() if reused else await asyncio.open_connection(self.host, self.port)
        ok = False
        try:
            writer.write(head.encode() + b"\r\n" + payload)
            try:
                status, data, keep = await self._read(reader)
            except (OSError, asyncio.IncompleteReadError):
                if not reused:
                    raise
                # an idle connection the peer closed: retry once on a fresh one
                writer.close()
                reader, writer = await asyncio.open_connection(self.host, self.port)
                writer.write(head.encode() + b"\r\n" + payload)
                status, data, keep = await self._read(reader)
            ok = keep
            return status, data
        finally:
            if ok and len(self._idle) < self.size:
                self._idle.append((reader, writer))
            else:
                writer.close()

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ")[1])
        length, keep = 0, True
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
            elif name.strip().lower() == "connection" and value.strip().lower() == "close":
                keep = False
        return status, await reader.readexactly(length), keep

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()
