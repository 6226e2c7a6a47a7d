"""The timeline: a per-test, append-only, thread-safe record of the evidence.

Operations (load requests and probe outcomes) and ledger writes arrive by the
hundred thousand, so they are stored column-wise in :mod:`array` arrays with
interned strings: about 30 bytes an operation instead of a dict each. Faults and
marks are rare and kept as small records. Appends take one lock; readers take a
:class:`Evidence` snapshot (copies of the columns) and never see a half-written row.

All times are wall-clock seconds since the epoch (``time.time()``), because the
load runs in other processes and only wall-clock time is shared with them.
"""

from __future__ import annotations

import math
import threading
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

WRITE_OK, WRITE_FAIL, WRITE_INDETERMINATE = 0, 1, 2
WRITE_STATUSES = {"ok": WRITE_OK, "fail": WRITE_FAIL, "indeterminate": WRITE_INDETERMINATE}
DEFAULT_MAX_OPERATIONS = 5_000_000
_MAX_STRINGS = 10_000
_OTHER = "(other)"


@dataclass
class FaultRecord:
    """One fault's life on the timeline; ``reverted_at`` is ``None`` while it is active."""

    kind: str
    name: str
    description: str
    params: dict[str, Any]
    target: str | None
    injected_at: float
    reverted_at: float | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "description": self.description,
            "params": dict(self.params),
            "target": self.target,
            "injected_at": self.injected_at,
            "reverted_at": self.reverted_at,
            "error": self.error,
        }


@dataclass(frozen=True)
class Mark:
    """A point event that is neither an operation nor a fault: an alert fired, a stop condition tripped."""

    at: float
    kind: str
    name: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Evidence:
    """An immutable snapshot of a timeline, the only input of :mod:`pytest_resiliency.measure`."""

    op_start: array  # type: ignore[type-arg]
    op_latency: array  # type: ignore[type-arg]
    op_ok: array  # type: ignore[type-arg]
    op_name: array  # type: ignore[type-arg]
    op_source: array  # type: ignore[type-arg]
    op_error: array  # type: ignore[type-arg]
    strings: tuple[str, ...]
    write_keys: tuple[str, ...]
    write_start: array  # type: ignore[type-arg]
    write_ack: array  # type: ignore[type-arg]
    write_status: array  # type: ignore[type-arg]
    faults: tuple[FaultRecord, ...]
    marks: tuple[Mark, ...]
    dropped: int = 0

    def __len__(self) -> int:
        return len(self.op_start)

    def sources(self) -> list[str]:
        return sorted({self.strings[i] for i in set(self.op_source)})


class _RecoveryTracker:
    """Cheap live answer to "has the service recovered since the last injection?".

    The same rule as :mod:`pytest_resiliency.measure`, kept incrementally so a wait does
    not re-sort a million operations every few milliseconds: ``boundary`` is the later of
    the last injection and the send time of the last failure; successes sent after it
    count, dated by their completion (``first_done``).
    """

    def __init__(self) -> None:
        self.injected = -math.inf
        self.boundary = -math.inf
        self.failed_since_injection = False
        self.after_start = array("d")
        self.after_done = array("d")
        self.first_done = math.inf
        self.latest = -math.inf

    def inject(self, t: float) -> None:
        if t > self.injected:
            self.injected = t
            self.failed_since_injection = False
        self._move_boundary(t)

    def _move_boundary(self, t: float) -> None:
        """Forget successes sent at or before ``t``: they do not prove recovery after it."""
        if t <= self.boundary:
            return
        self.boundary = t
        if any(s <= t for s in self.after_start):
            kept = [(s, d) for s, d in zip(self.after_start, self.after_done, strict=True) if s > t]
            self.after_start = array("d", (s for s, _ in kept))
            self.after_done = array("d", (d for _, d in kept))
            self.first_done = min(self.after_done, default=math.inf)

    def add(self, start: float, latency: float, ok: bool) -> None:
        """Once per operation, under the timeline's lock: comparisons, no calls, where it can."""
        if start > self.latest:
            self.latest = start
        if not ok:
            if start + latency >= self.injected:  # sent after it, or in flight when it was injected
                self.failed_since_injection = True
            self._move_boundary(start)
        elif start > self.boundary:
            done = start + latency
            self.after_start.append(start)
            self.after_done.append(done)
            if done < self.first_done:
                self.first_done = done


@dataclass(frozen=True)
class RecoveryState:
    """What the live evidence says since the last injection (see :meth:`Timeline.recovery_state`).

    ``first_success`` is the completion of the first success sent after the boundary;
    ``failed`` whether any operation sent since the last injection failed.
    """

    successes: int
    first_success: float | None
    latest: float | None
    failed: bool = False
    injected: float | None = None

    def holds(self, successes: int, window: float) -> bool:
        """The recovery criteria: ``successes`` successes after the boundary spanning ``window``."""
        return (
            self.first_success is not None
            and self.latest is not None
            and self.successes >= successes
            and self.latest - self.first_success >= window
        )

    def settled(self, successes: int, window: float) -> bool:
        """Recovered, or the last fault caused no failure for a whole ``window`` of evidence.

        The second case is what makes a fault without effect end its wait after one
        window (the measurement gives RTO 0), rather than waiting for ``successes``.
        """
        if self.holds(successes, window):
            return True
        return (
            not self.failed
            and self.injected is not None
            and self.latest is not None
            and self.latest - self.injected >= window
        )


class Timeline:
    """Append-only evidence of one test. Safe to append from any number of threads."""

    def __init__(self, max_operations: int = DEFAULT_MAX_OPERATIONS) -> None:
        self.max_operations = max_operations
        self._lock = threading.Lock()
        self._strings: list[str] = [""]
        self._string_ids: dict[str, int] = {"": 0}
        self._op_start = array("d")
        self._op_latency = array("d")
        self._op_ok = array("b")
        self._op_name = array("I")
        self._op_source = array("I")
        self._op_error = array("I")
        self._write_keys: list[str] = []
        self._write_start = array("d")
        self._write_ack = array("d")
        self._write_status = array("b")
        self._faults: list[FaultRecord] = []
        self._marks: list[Mark] = []
        self._dropped = 0
        self._tracker = _RecoveryTracker()
        self._snapshot: tuple[tuple[Any, ...], Evidence] | None = None

    # -- appends -----------------------------------------------------------------

    def _intern(self, text: str) -> int:
        ident = self._string_ids.get(text)
        if ident is None:
            if len(self._strings) >= _MAX_STRINGS - 1 and text != _OTHER:
                return self._intern(_OTHER)  # one slot is kept for it
            ident = len(self._strings)
            self._strings.append(text)
            self._string_ids[text] = ident
        return ident

    def add_operation(
        self,
        start: float,
        latency: float,
        ok: bool,
        name: str = "",
        source: str = "",
        error: str | None = None,
    ) -> None:
        """One request or probe outcome: when it started, how long it took, whether it succeeded."""
        with self._lock:
            self._tracker.add(start, latency, ok)
            if len(self._op_start) >= self.max_operations:
                self._dropped += 1
                return
            self._op_start.append(start)
            self._op_latency.append(latency)
            self._op_ok.append(1 if ok else 0)
            self._op_name.append(self._intern(name))
            self._op_source.append(self._intern(source))
            self._op_error.append(self._intern(error or ""))

    def add_operations(self, rows: Iterable[tuple[float, float, bool, str, str, str | None]]) -> int:
        """Many operations under one lock acquisition (the load controller's batches)."""
        count = 0
        with self._lock:
            # The ingest's hot loop (~1 µs per operation): bound methods and the intern table looked
            # up once per batch; a string already interned costs one dict lookup, no call.
            track = self._tracker.add
            intern, ids = self._intern, self._string_ids
            starts, latencies, oks = self._op_start.append, self._op_latency.append, self._op_ok.append
            names, sources, errors = self._op_name.append, self._op_source.append, self._op_error.append
            room = self.max_operations - len(self._op_start)
            for start, latency, ok, name, source, error in rows:
                count += 1
                track(start, latency, ok)
                if room <= 0:
                    self._dropped += 1
                    continue
                room -= 1
                starts(start)
                latencies(latency)
                oks(1 if ok else 0)
                ident = ids.get(name)
                names(intern(name) if ident is None else ident)
                ident = ids.get(source)
                sources(intern(source) if ident is None else ident)
                errors((ids.get(error) or intern(error)) if error else 0)  # id 0 is "", no error
        return count

    def add_write(self, key: str, start: float, ack: float | None, status: str) -> None:
        """A ledger entry: ``status`` is ``ok`` (acknowledged), ``fail`` or ``indeterminate``."""
        self.add_writes(((key, start, ack, status),))

    def add_writes(self, rows: Iterable[tuple[str, float, float | None, str]]) -> None:
        """Many ledger entries ``(key, start, ack, status)`` under one lock (the ingest's batches)."""
        rows = list(rows)
        for _, _, _, status in rows:
            if status not in WRITE_STATUSES:
                raise ValueError(f"write status {status!r} is not one of {', '.join(WRITE_STATUSES)}")
        with self._lock:
            for key, start, ack, status in rows:
                self._write_keys.append(key)
                self._write_start.append(start)
                self._write_ack.append(math.nan if ack is None else ack)
                self._write_status.append(WRITE_STATUSES[status])

    def fault_injected(self, record: FaultRecord) -> FaultRecord:
        with self._lock:
            self._faults.append(record)
            self._tracker.inject(record.injected_at)
        return record

    def fault_reverted(self, record: FaultRecord, at: float, error: str | None = None) -> None:
        with self._lock:
            record.reverted_at = at
            if error:
                record.error = error

    def mark(self, at: float, kind: str, name: str, **detail: Any) -> None:
        with self._lock:
            self._marks.append(Mark(at, kind, name, detail))

    # -- reads -------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._op_start)

    @property
    def faults(self) -> tuple[FaultRecord, ...]:
        with self._lock:
            return tuple(self._faults)

    @property
    def writes(self) -> int:
        return len(self._write_keys)

    def recovery_state(self) -> RecoveryState:
        """Successes since the later of the last failure and the last injection, in O(1)."""
        with self._lock:
            t = self._tracker
            return RecoveryState(
                successes=len(t.after_start),
                first_success=t.first_done if t.after_start else None,
                latest=t.latest if t.latest > -math.inf else None,
                failed=t.failed_since_injection,
                injected=t.injected if t.injected > -math.inf else None,
            )

    def snapshot(self) -> Evidence:
        """A copy of everything so far; the same copy again while nothing was appended.

        The end of a test snapshots twice (measurement, then the report's chart): at the
        5M-operation cap each copy costs a third of a second.
        """
        with self._lock:
            key = (
                len(self._op_start),
                len(self._write_keys),
                len(self._marks),
                self._dropped,
                tuple((f.injected_at, f.reverted_at, f.error) for f in self._faults),
            )
            if self._snapshot is not None and self._snapshot[0] == key:
                return self._snapshot[1]
            evidence = Evidence(
                op_start=array("d", self._op_start),
                op_latency=array("d", self._op_latency),
                op_ok=array("b", self._op_ok),
                op_name=array("I", self._op_name),
                op_source=array("I", self._op_source),
                op_error=array("I", self._op_error),
                strings=tuple(self._strings),
                write_keys=tuple(self._write_keys),
                write_start=array("d", self._write_start),
                write_ack=array("d", self._write_ack),
                write_status=array("b", self._write_status),
                faults=tuple(FaultRecord(**{**f.__dict__, "params": dict(f.params)}) for f in self._faults),
                marks=tuple(self._marks),
                dropped=self._dropped,
            )
            self._snapshot = (key, evidence)
            return evidence
