"""The userspace TCP fault proxy (this kernel has no ``tc netem``): Toxiproxy's toxics in one process.

Run as ``python -I -S proxy_server.py SPEC_JSON``; the client is :class:`pytest_resiliency.faults.toxics.Proxy`.
It listens on a port, forwards every connection to the upstream and passes each chunk of
data through the toxics of its direction (``upstream`` = client to server, ``downstream``
= server to client), with Toxiproxy's names and semantics:

``latency`` (latency, jitter), ``bandwidth`` (rate), ``down`` (the proxy refuses connections and
drops the open ones), ``blackhole`` (accept and drop data), ``reset_peer`` (TCP RST after
timeout), ``timeout`` (drop data, close after timeout; 0 = never close), ``slicer``
(average_size, size_variation, delay between slices), ``limit_data`` (close after bytes).
Attributes are in base units, like the rest of the package: seconds, bytes, bytes per second
(Toxiproxy's own API uses ms, µs and KB/s). ``toxicity`` is the probability that a toxic
applies to a connection.

Commands arrive as JSON lines on stdin, replies leave as JSON lines on stdout. EOF on stdin
means pytest closed the proxy or died: the proxy exits, so no toxic outlives its test. Every
toxic also carries an ``expires_at`` after which the proxy removes it by itself.
Standard library only: it must start fast and needs nothing from the package.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import socket
import struct
import sys
import time
from typing import Any

TYPES = ("latency", "bandwidth", "down", "blackhole", "reset_peer", "timeout", "slicer", "limit_data")
STREAMS = ("upstream", "downstream")
CHUNK = 65536


class ActiveToxic:
    """A toxic held by the proxy process (the client side is :class:`..toxics.Toxic`)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.name: str = spec["name"]
        self.type: str = spec["type"]
        self.stream: str = spec.get("stream", "downstream")
        self.toxicity = float(spec.get("toxicity", 1.0))
        self.attributes: dict[str, Any] = dict(spec.get("attributes", {}))
        self.expiry: asyncio.TimerHandle | None = None

    def attr(self, key: str, default: float = 0.0) -> float:
        return float(self.attributes.get(key, default))


class Connection:
    """One client connection and its upstream connection, with per-toxic decisions and timers."""

    def __init__(self, proxy: ProxyServer, client: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.applies: dict[str, bool] = {}
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.sent = {"upstream": 0, "downstream": 0}
        self.closed = False
        self.tasks: list[asyncio.Task[None]] = []

    def attach(self, toxic: ActiveToxic) -> None:
        """Decide (once) whether ``toxic`` applies here; start its timer if it has one."""
        applies = self.applies.setdefault(toxic.name, random.random() < toxic.toxicity)
        if not applies:
            return
        loop = asyncio.get_running_loop()
        if toxic.type == "reset_peer":
            self.timers[toxic.name] = loop.call_later(toxic.attr("timeout"), self.reset)
        elif toxic.type == "timeout" and toxic.attr("timeout") > 0:
            self.timers[toxic.name] = loop.call_later(toxic.attr("timeout"), self.close)

    def detach(self, toxic: ActiveToxic) -> None:
        self.applies.pop(toxic.name, None)
        timer = self.timers.pop(toxic.name, None)
        if timer is not None:
            timer.cancel()

    def active(self, stream: str) -> list[ActiveToxic]:
        return [
            t
            for t in self.proxy.toxics.values()
            if t.stream == stream and self.applies.get(t.name) and t.type != "down"
        ]

    def writers(self) -> list[asyncio.StreamWriter]:
        return [self.client[1]] + ([self.upstream[1]] if self.upstream else [])

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for writer in self.writers():
            writer.transport.abort()
        self.finish()

    def reset(self) -> None:
        """Close both sockets with SO_LINGER 0: the peers see ``connection reset by peer``."""
        if self.closed:
            return
        for writer in self.writers():
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def finish(self) -> None:
        for timer in self.timers.values():
            timer.cancel()
        self.timers.clear()
        self.proxy.connections.discard(self)
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()

    async def run(self) -> None:
        try:
            self.upstream = await asyncio.open_connection(self.proxy.upstream_host, self.proxy.upstream_port)
        except OSError:
            self.close()
            return
        if self.closed:  # closed (a `down` toxic) while the upstream was connecting
            self.upstream[1].transport.abort()
            return
        for sock_writer in self.writers():
            sock = sock_writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for toxic in list(self.proxy.toxics.values()):
            self.attach(toxic)
        up = Link(self, "upstream", self.client[0], self.upstream[1])
        down = Link(self, "downstream", self.upstream[0], self.client[1])
        self.tasks = [asyncio.ensure_future(f) for f in (up.pump(), up.emit(), down.pump(), down.emit())]
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.close()


class Link:
    """One direction of a connection: a reader task applies toxics, a writer task releases on time."""

    def __init__(
        self, conn: Connection, stream: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.conn = conn
        self.stream = stream
        self.reader = reader
        self.writer = writer
        self.queue: asyncio.Queue[tuple[float, bytes | None, bool]] = asyncio.Queue()
        self.last_release = 0.0

    def schedule(self, at: float, data: bytes | None, close: bool = False) -> None:
        at = max(at, self.last_release)  # TCP keeps order: a chunk never overtakes the previous one
        self.last_release = at
        self.queue.put_nowait((at, data, close))

    async def pump(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await self.reader.read(CHUNK)
                now = loop.time()
                if not data:
                    self.schedule(now, None)
                    return
                self.transform(data, now)
        except (ConnectionError, OSError):
            self.conn.close()

    def transform(self, data: bytes, now: float) -> None:
        toxics = self.conn.active(self.stream)
        if any(t.type in ("blackhole", "timeout") for t in toxics):
            return  # dropped: the peer waits for bytes that never come
        pieces: list[tuple[float, bytes]] = [(0.0, data)]
        close = False
        rate = 0.0
        for toxic in toxics:
            if toxic.type == "latency":
                jitter = toxic.attr("jitter")
                delay = toxic.attr("latency") + (random.uniform(-jitter, jitter) if jitter else 0.0)
                pieces = [(d + max(0.0, delay), b) for d, b in pieces]
            elif toxic.type == "slicer":
                pieces = self.slice(pieces, toxic)
            elif toxic.type == "bandwidth":
                rate = toxic.attr("rate")
            elif toxic.type == "limit_data":
                left = int(toxic.attr("bytes")) - self.conn.sent[self.stream]
                kept = []
                for d, b in pieces:
                    if left <= 0:
                        break
                    kept.append((d, b[:left]))
                    left -= len(b)
                pieces = kept
                close = left <= 0
        for index, (delay, piece) in enumerate(pieces):
            at = now + delay
            if rate > 0:
                at = max(at, self.last_release) + len(piece) / rate
            self.conn.sent[self.stream] += len(piece)
            self.schedule(at, piece, close and index == len(pieces) - 1)
        if close and not pieces:
            self.schedule(now, b"", True)

    @staticmethod
    def slice(pieces: list[tuple[float, bytes]], toxic: ActiveToxic) -> list[tuple[float, bytes]]:
        average = max(1, int(toxic.attr("average_size", 1)))
        variation = int(toxic.attr("size_variation"))
        step = toxic.attr("delay")
        sliced = []
        for delay, data in pieces:
            offset, extra = 0, 0.0
            while offset < len(data):
                size = max(1, average + random.randint(-variation, variation) if variation else average)
                sliced.append((delay + extra, data[offset : offset + size]))
                offset += size
                extra += step
        return sliced

    async def emit(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                at, data, close = await self.queue.get()
                wait = at - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if data is None:
                    if self.writer.can_write_eof():
                        self.writer.write_eof()
                    return
                if data:
                    self.writer.write(data)
                    await self.writer.drain()
                if close:
                    self.conn.close()
                    return
        except (ConnectionError, OSError):
            self.conn.close()


class ProxyServer:
    """The proxy process itself: a listener, its connections and the toxics they pass through."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.listen_host: str = spec.get("listen_host", "127.0.0.1")
        self.listen_port = int(spec.get("listen_port", 0))
        self.upstream_host: str = spec["upstream_host"]
        self.upstream_port = int(spec["upstream_port"])
        self.toxics: dict[str, ActiveToxic] = {}
        self.connections: set[Connection] = set()
        self.server: asyncio.Server | None = None
        self.accepted = 0

    async def listen(self) -> None:
        self.server = await asyncio.start_server(
            self.accept, self.listen_host, self.listen_port, reuse_address=True, limit=CHUNK
        )
        self.listen_port = self.server.sockets[0].getsockname()[1]

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.server is None:  # accepted by the kernel just before a `down` toxic closed the listener
            writer.transport.abort()
            return
        self.accepted += 1
        conn = Connection(self, (reader, writer))
        self.connections.add(conn)
        with contextlib.suppress(asyncio.CancelledError):  # shutting down: the connection just ends
            await conn.run()

    def disable(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for conn in list(self.connections):
            conn.close()

    async def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        op = command.get("op")
        if op == "add":
            spec = command["toxic"]
            if spec["type"] not in TYPES or spec.get("stream", "downstream") not in STREAMS:
                return {"ok": False, "error": f"unknown toxic type or stream in {spec}"}
            if spec["name"] in self.toxics:
                return {"ok": False, "error": f"toxic {spec['name']!r} already exists"}
            toxic = ActiveToxic(spec)
            self.toxics[toxic.name] = toxic
            if toxic.type == "down":
                self.disable()
            for conn in list(self.connections):
                conn.attach(toxic)
            expires_at = spec.get("expires_at")
            if expires_at is not None:
                toxic.expiry = asyncio.get_running_loop().call_later(
                    max(0.0, float(expires_at) - time.time()), lambda: asyncio.ensure_future(self.remove(toxic.name))
                )
            return {"ok": True}
        if op == "remove":
            return await self.remove(command["name"])
        if op == "list":
            return {"ok": True, "toxics": [t.spec for t in self.toxics.values()]}
        if op == "stats":
            return {"ok": True, "connections": len(self.connections), "accepted": self.accepted}
        if op == "reset":
            for name in list(self.toxics):
                await self.remove(name)
            return {"ok": True}
        return {"ok": False, "error": f"unknown op {op!r}"}

    async def remove(self, name: str) -> dict[str, Any]:
        toxic = self.toxics.pop(name, None)
        if toxic is None:
            return {"ok": True, "removed": False}
        if toxic.expiry is not None:
            toxic.expiry.cancel()
        for conn in list(self.connections):
            conn.detach(toxic)
        if toxic.type == "down" and self.server is None and not any(t.type == "down" for t in self.toxics.values()):
            try:
                await self.listen()
            except OSError as exc:
                return {"ok": False, "error": f"cannot listen again on port {self.listen_port}: {exc}"}
        return {"ok": True, "removed": True}


def _reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def serve(spec: dict[str, Any]) -> int:
    proxy = ProxyServer(spec)
    try:
        await proxy.listen()
    except OSError as exc:
        _reply({"event": "error", "error": f"cannot listen on {proxy.listen_host}:{proxy.listen_port}: {exc}"})
        return 1
    _reply({"event": "listening", "port": proxy.listen_port, "pid": os.getpid()})
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break  # pytest closed us, or died: no toxic may outlive it
        try:
            command = json.loads(line)
            answer = await proxy.handle(command)
        except Exception as exc:  # a bad command is answered, never fatal
            command, answer = {}, {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        _reply({"id": command.get("id"), **answer})
    proxy.disable()
    return 0


def main(argv: list[str]) -> int:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for pytest; it closes us after reverting
    return asyncio.run(serve(json.loads(argv[0])))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
