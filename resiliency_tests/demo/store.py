"""The order store and its durability: what survives a crash is what makes RPO real.

Three modes, chosen per process:

* ``fsync``: every write is appended to a log and the log is fsynced *before* the write is
  acknowledged (group commit: one fsync covers every write that arrived meanwhile, so the
  throughput stays high). A restart replays the log; nothing acknowledged is ever lost.
* ``snapshot``: writes are acknowledged from memory; every ``interval`` seconds the whole
  state is written to a snapshot file (temp file, fsync, rename). A crash loses what was
  acknowledged since the last snapshot: RPO is up to one interval.
* ``memory``: nothing is persisted; a crash loses everything.

A write that cannot be made durable (disk full) is refused with :class:`StorageError` and
never becomes visible, and a torn log record is cut off, so the log stays replayable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DURABILITIES = ("fsync", "snapshot", "memory")
LOG_NAME = "orders.log"
SNAPSHOT_NAME = "orders.snapshot.json"


class StorageError(Exception):
    """The write could not be made durable (disk full, I/O error); it was not applied."""


@dataclass
class Order:
    key: str
    body: dict[str, Any]
    seq: int
    committed_at: float

    def as_dict(self) -> dict[str, Any]:
        return {**self.body, "key": self.key, "seq": self.seq, "committed_at": self.committed_at}


@dataclass
class StoreStats:
    writes: int = 0
    refused: int = 0
    fsyncs: int = 0
    snapshots: int = 0
    snapshot_errors: int = 0
    last_error: str | None = None
    recovered: int = 0
    torn_bytes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class _LogWriter(threading.Thread):
    """Group commit: drains every queued record, writes them, one fsync, then acknowledges them all."""

    def __init__(self, path: Path, loop: asyncio.AbstractEventLoop, stats: StoreStats) -> None:
        super().__init__(name="demo-log-writer", daemon=True)
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.offset = os.fstat(self.fd).st_size
        self.loop = loop
        self.stats = stats
        self.queue: queue.Queue[tuple[bytes, asyncio.Future[None]] | None] = queue.Queue()

    def run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < 1024:
                try:
                    more = self.queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self.queue.put(None)
                    break
                batch.append(more)
            data = b"".join(record for record, _ in batch)
            error: Exception | None = None
            try:
                written = 0
                while written < len(data):
                    written += os.write(self.fd, data[written:])
                os.fsync(self.fd)
                self.offset += len(data)
                self.stats.fsyncs += 1
            except OSError as exc:
                error = StorageError(f"log write failed: {exc.strerror or exc}")
                with contextlib.suppress(OSError):  # cut the torn tail so the log stays replayable
                    os.ftruncate(self.fd, self.offset)
            for _, future in batch:
                self.loop.call_soon_threadsafe(_settle, future, error)

    def stop(self) -> None:
        self.queue.put(None)
        self.join(timeout=5)
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _settle(future: asyncio.Future[None], error: Exception | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


class Store:
    """Orders by key, with the chosen durability. Use from one event loop."""

    def __init__(self, durability: str, data_dir: Path | None, snapshot_interval: float = 1.0) -> None:
        if durability not in DURABILITIES:
            raise ValueError(f"durability {durability!r} is not one of {', '.join(DURABILITIES)}")
        if durability != "memory" and data_dir is None:
            raise ValueError(f"durability {durability!r} needs a data directory (--data-dir)")
        if snapshot_interval <= 0:
            raise ValueError(f"snapshot interval must be > 0, got {snapshot_interval}")
        self.durability = durability
        self.data_dir = data_dir
        self.snapshot_interval = snapshot_interval
        self.orders: dict[str, Order] = {}
        self.log: list[Order] = []  # in commit order, for replication
        self.seq = 0
        self.stats = StoreStats()
        self.last_snapshot_at: float | None = None
        self.next_snapshot_at: float | None = None
        self._writer: _LogWriter | None = None
        self._snapshot_task: asyncio.Task[None] | None = None
        self._pending: set[str] = set()

    # -- recovery ------------------------------------------------------------------

    def recover(self) -> int:
        """Load what the durable state holds; returns how many orders were recovered."""
        if self.data_dir is None or self.durability == "memory":
            return 0
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.durability == "snapshot":
            path = self.data_dir / SNAPSHOT_NAME
            if path.exists():
                state = json.loads(path.read_text())
                for row in state["orders"]:
                    self._apply(Order(row["key"], row["body"], row["seq"], row["committed_at"]))
                self.last_snapshot_at = state["taken_at"]
        else:
            self._replay(self.data_dir / LOG_NAME)
        self.stats.recovered = len(self.orders)
        return len(self.orders)

    def _replay(self, path: Path) -> None:
        if not path.exists():
            return
        data = path.read_bytes()
        good = 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            try:
                row = json.loads(line)
            except ValueError:
                break
            self._apply(Order(row["key"], row["body"], row["seq"], row["committed_at"]))
            good += len(line)
        if good < len(data):  # a torn tail from a crash mid-write: cut it before appending again
            self.stats.torn_bytes = len(data) - good
            with open(path, "r+b") as fh:
                fh.truncate(good)

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.durability == "fsync":
            assert self.data_dir is not None
            self._writer = _LogWriter(self.data_dir / LOG_NAME, loop, self.stats)
            self._writer.start()
        elif self.durability == "snapshot":
            self._snapshot_task = loop.create_task(self._snapshots())

    async def close(self, final_snapshot: bool = True) -> None:
        """Clean shutdown (SIGTERM): a snapshot store writes a last snapshot, so nothing is lost."""
        if self._snapshot_task is not None:
            self._snapshot_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._snapshot_task
            if final_snapshot:
                with contextlib.suppress(StorageError):
                    await self.snapshot()
        if self._writer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._writer.stop)

    # -- writes ----------------------------------------------------------------------

    def get(self, key: str) -> Order | None:
        return self.orders.get(key)

    async def put(self, key: str, body: dict[str, Any], committed_at: float | None = None) -> tuple[Order, bool]:
        """Store an order durably per the mode; returns (order, created). Idempotent by key.

        Raises :class:`StorageError` when the order could not be made durable; it is then
        not visible to readers.
        """
        existing = self.orders.get(key)
        if existing is not None:
            return existing, False
        if key in self._pending:
            raise StorageError(f"order {key!r} is being written by a concurrent request; retry")
        order = Order(key, body, self.seq + 1, time.time() if committed_at is None else committed_at)
        if self._writer is not None:
            record = json.dumps({"key": key, "body": body, "seq": order.seq, "committed_at": order.committed_at})
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._pending.add(key)
            self.seq += 1  # reserve the sequence number; a refused write leaves a gap, never a duplicate
            try:
                self._writer.queue.put((record.encode() + b"\n", future))
                await future
            except StorageError as exc:
                self.stats.refused += 1
                self.stats.last_error = str(exc)
                raise
            finally:
                self._pending.discard(key)
            # acknowledged only now: the record is on disk
        else:
            self.seq += 1
        self._apply(order)
        self.stats.writes += 1
        return order, True

    def _apply(self, order: Order) -> None:
        self.orders[order.key] = order
        self.log.append(order)
        self.seq = max(self.seq, order.seq)

    # -- snapshots -------------------------------------------------------------------

    async def _snapshots(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.snapshot_interval
        next_at = loop.time() + interval
        while True:
            self.next_snapshot_at = time.time() + (next_at - loop.time())
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at += interval
            with contextlib.suppress(StorageError):
                await self.snapshot()

    async def snapshot(self) -> None:
        """Write the whole state atomically; what it holds is what a crash keeps."""
        assert self.data_dir is not None
        taken_at = time.time()
        rows = [{"key": o.key, "body": o.body, "seq": o.seq, "committed_at": o.committed_at} for o in self.log]
        path = self.data_dir / SNAPSHOT_NAME
        try:
            await asyncio.get_running_loop().run_in_executor(None, _write_atomically, path, rows, taken_at)
        except OSError as exc:
            self.stats.snapshot_errors += 1
            self.stats.last_error = f"snapshot failed: {exc.strerror or exc}"
            raise StorageError(self.stats.last_error) from None
        self.stats.snapshots += 1
        self.last_snapshot_at = taken_at


def _write_atomically(path: Path, rows: list[dict[str, Any]], taken_at: float) -> None:
    tmp = path.with_suffix(".tmp")
    try:
        with open(tmp, "w") as fh:
            json.dump({"taken_at": taken_at, "orders": rows}, fh, separators=(",", ":"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def durable_keys(data_dir: Path) -> set[str]:
    """The order keys a restart would recover from ``data_dir`` (log or snapshot), read from disk.

    The strongest read-back for an RPO check: not what the process holds in memory, but
    what is on disk right now.
    """
    keys: set[str] = set()
    snapshot = data_dir / SNAPSHOT_NAME
    if snapshot.exists():
        keys.update(row["key"] for row in json.loads(snapshot.read_text())["orders"])
    log = data_dir / LOG_NAME
    if log.exists():
        for line in log.read_bytes().splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            try:
                keys.add(json.loads(line)["key"])
            except (ValueError, KeyError):
                break
    return keys
