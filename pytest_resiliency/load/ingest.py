"""Ingest: parses the sink's JSON lines in batches into the experiment's timeline.

One ``json.loads`` per chunk (lines joined into one array) and one timeline lock per
batch keep the pipeline far above the request rates a locust run produces.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

from ..timeline import Timeline
from .records import META, WRITE

SOURCE = "load"


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
        self.bad_lines = 0
        self.first_start: float | None = None
        self.last_start: float | None = None
        self._partial = b""
        self._changed = threading.Condition()

    def feed(self, chunk: bytes) -> int:
        """Consume ``chunk``; an incomplete last line waits for the next chunk. Returns records ingested."""
        data = self._partial + chunk if self._partial else chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            self._partial = data
            return 0
        self._partial = data[cut + 1 :]
        body = data[:cut]
        try:
            records = json.loads(b"[" + body.replace(b"\n", b",") + b"]")
        except ValueError:
            records = self._parse_lines(body)
        return self._ingest(records)

    def _parse_lines(self, body: bytes) -> list[Any]:
        records = []
        for line in body.split(b"\n"):
            try:
                records.append(json.loads(line))
            except ValueError:
                self.bad_lines += 1
        return records

    def _ingest(self, records: list[Any]) -> int:
        source = self.source
        ops = []
        successes = 0
        timeline = self.timeline
        for rec in records:
            if not isinstance(rec, list) or not rec:
                self.bad_lines += 1
                continue
            kind = rec[0]
            if kind == WRITE:
                _, key, start, ack, status = rec
                timeline.add_write(key, start, ack, status)
                self.writes[status] += 1
            elif kind == META:
                self.meta[rec[1]] = rec[2] if len(rec) > 2 and isinstance(rec[2], dict) else {}
            else:
                start, latency, ok, name, error = rec
                ops.append((start, latency, ok, name, source, error))
                if ok:
                    successes += 1
                elif error:
                    self.errors[error] += 1
        if ops:
            timeline.add_operations(ops)
            first = min(op[0] for op in ops)
            last = max(op[0] for op in ops)
            self.first_start = first if self.first_start is None else min(self.first_start, first)
            self.last_start = last if self.last_start is None else max(self.last_start, last)
        with self._changed:
            self.requests += len(ops)
            self.successes += successes
            self._changed.notify_all()
        return len(records)

    def wait(self, predicate: Any, timeout: float) -> bool:
        """Block until ``predicate()`` holds (re-checked on every batch) or ``timeout`` passes."""
        with self._changed:
            return bool(self._changed.wait_for(predicate, timeout))

    def poke(self) -> None:
        """Wake waiters (the load stopped or died)."""
        with self._changed:
            self._changed.notify_all()
