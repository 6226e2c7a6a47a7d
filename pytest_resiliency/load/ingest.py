"""Ingest: parses the sink's frames (see :mod:`.records`) into the experiment's timeline.

One unpickling per batch and one timeline lock per batch keep the pipeline far above the
request rates a locust run produces.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from operator import itemgetter
from typing import Any

from ..timeline import WRITE_STATUSES, Timeline
from .records import FRAME_HEADER, MAX_FRAME, META, WRITE, decode_frame

SOURCE = "load"
_start = itemgetter(0)
_NUMBER = (float, int)


class Ingest:
    """Feeds bytes of the events stream into a timeline; keeps running totals for ``stats()``."""

    def __init__(self, timeline: Timeline, source: str = SOURCE) -> None:
        self.timeline = timeline
        self.source = source
        self.requests = 0
        self.successes = 0
        self.writes: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.meta: dict[str, dict[str, Any]] = {}
        self.bad_frames = 0  # frames that were not a list of plain data (their records are lost)
        self.bad_records = 0  # records of a good frame that were not a request, write or meta
        self.corrupt = False  # a frame length made no sense: the rest of the stream is unreadable
        self.first_start: float | None = None
        self.last_start: float | None = None
        self._partial = b""
        self._changed = threading.Condition()

    def feed(self, chunk: bytes) -> int:
        """Consume ``chunk``; an incomplete last frame waits for the next chunk. Returns records ingested."""
        data = self._partial + chunk if self._partial else chunk
        header = FRAME_HEADER.size
        records: list[Any] = []
        at = 0
        while not self.corrupt and len(data) - at >= header:
            (size,) = FRAME_HEADER.unpack_from(data, at)
            if size > MAX_FRAME:
                self.corrupt = True
                break
            end = at + header + size
            if end > len(data):
                break
            try:
                records.extend(decode_frame(data[at + header : end]))
            except ValueError:
                self.bad_frames += 1
            at = end
        self._partial = b"" if self.corrupt else data[at:]
        return self._ingest(records)

    def _ingest(self, records: list[Any]) -> int:
        source = self.source
        ops = []
        writes = []
        successes = 0
        for rec in records:
            try:
                kind = rec[0]
                if kind == WRITE:
                    _, key, start, ack, status = rec
                    if (
                        status not in WRITE_STATUSES
                        or not isinstance(key, str)
                        or not isinstance(start, _NUMBER)
                        or not (ack is None or isinstance(ack, _NUMBER))
                    ):
                        raise ValueError(rec)
                    writes.append((key, start, ack, status))
                elif kind == META:
                    self.meta[rec[1]] = rec[2] if len(rec) > 2 and isinstance(rec[2], dict) else {}
                else:
                    start, latency, ok, name, error = rec
                    # Checked here, whole: a record the timeline refused halfway would misalign its columns.
                    if (
                        not isinstance(start, _NUMBER)
                        or not isinstance(latency, _NUMBER)
                        or not isinstance(name, str)
                        or not (error is None or isinstance(error, str))
                    ):
                        raise ValueError(rec)
                    ops.append((start, latency, ok, name, source, error))
                    if ok:
                        successes += 1
                    elif error:
                        self.errors[error] += 1
            except (TypeError, ValueError, IndexError, KeyError):
                self.bad_records += 1
        if writes:
            self.timeline.add_writes(writes)
            self.writes.update(status for _, _, _, status in writes)
        if ops:
            self.timeline.add_operations(ops)
            first = min(ops, key=_start)[0]
            last = max(ops, key=_start)[0]
            self.first_start = first if self.first_start is None else min(self.first_start, first)
            self.last_start = last if self.last_start is None else max(self.last_start, last)
        with self._changed:
            self.requests += len(ops)
            self.successes += successes
            self._changed.notify_all()
        return len(records)

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until ``predicate()`` holds (re-checked on every batch) or ``timeout`` passes."""
        with self._changed:
            return bool(self._changed.wait_for(predicate, timeout))

    def poke(self) -> None:
        """Wake waiters (the load stopped or died)."""
        with self._changed:
            self._changed.notify_all()
