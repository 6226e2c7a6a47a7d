"""Operations sorted once by send time, and the few queries measurement asks of them.

:mod:`pytest_resiliency.measure` states the rules; this module answers "which failures
were sent in this span", "when did the first of these complete" and the like, without
the rules having to care how. Two backends give identical answers: plain Python lists,
and numpy arrays when numpy is installed and the evidence is large (a million operations
sort in milliseconds instead of seconds, and take 17 bytes each instead of ~70). numpy is
imported here only, and only when a measurement needs it, never at pytest start-up.
"""

from __future__ import annotations

import bisect
import math
import operator
from itertools import islice
from typing import Any, Protocol

from .timeline import Evidence

# Below this many operations the pure backend is as fast as importing numpy would be.
NUMPY_FROM = 20_000


def percentile(sorted_values: Any, q: float) -> float | None:
    """Nearest-rank percentile (no interpolation: every figure is an observed latency)."""
    if len(sorted_values) == 0:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return float(sorted_values[rank - 1])


class Columns(Protocol):
    """What measurement asks of the operations; indices are in send-time order."""

    n: int

    def span(self, t_from: float | None, t_to: float | None) -> tuple[int, int]:
        """``lo, hi`` of the operations sent in ``[t_from, t_to)`` (``None``: unbounded)."""

    def failures(self, lo: int, hi: int) -> tuple[int, float | None, float | None]:
        """Count, first and last send time of the failures in ``lo..hi``."""

    def failed_in_flight(self, lo: int, t: float) -> int:
        """Failures sent before ``lo`` (before ``t``) that completed at or after ``t``."""

    def sent_after(self, t: float, lo: int, hi: int) -> int:
        """The first index in ``lo..hi`` sent strictly after ``t``."""

    def start(self, i: int) -> float: ...

    def first_done(self, lo: int, hi: int) -> float:
        """The earliest completion in ``lo..hi`` (non-empty)."""

    def longest_gap(self, lo: int, hi: int) -> float | None:
        """Longest time between completions of successes in ``lo..hi`` and the last one before."""

    def window(self, lo: int, hi: int) -> tuple[int, int, list[float | None]]:
        """Operations, failures and success latency p50/p95/p99 in ``lo..hi``."""


def columns(evidence: Evidence) -> Columns:
    """The backend for this evidence: numpy when it is installed and the evidence large."""
    if len(evidence) >= NUMPY_FROM:
        try:
            return _NumpyColumns(evidence)
        except ImportError:
            pass
    return _PureColumns(evidence)


QUANTILES = (0.50, 0.95, 0.99)


class _PureColumns:
    def __init__(self, evidence: Evidence) -> None:
        starts, latencies, oks = evidence.op_start, evidence.op_latency, evidence.op_ok
        self.n = len(starts)
        if all(map(operator.le, starts, islice(starts, 1, None))):
            self._start, self._lat, self._ok = list(starts), list(latencies), [bool(v) for v in oks]
        else:
            order = sorted(range(self.n), key=starts.__getitem__)
            self._start = [starts[i] for i in order]
            self._lat = [latencies[i] for i in order]
            self._ok = [bool(oks[i]) for i in order]
        self._longest = max(latencies, default=0.0)

    def span(self, t_from: float | None, t_to: float | None) -> tuple[int, int]:
        lo = 0 if t_from is None else bisect.bisect_left(self._start, t_from)
        hi = self.n if t_to is None else bisect.bisect_left(self._start, t_to)
        return lo, max(lo, hi)

    def failures(self, lo: int, hi: int) -> tuple[int, float | None, float | None]:
        sent = [self._start[i] for i in range(lo, hi) if not self._ok[i]]
        return len(sent), (sent[0] if sent else None), (sent[-1] if sent else None)

    def failed_in_flight(self, lo: int, t: float) -> int:
        count, i = 0, lo - 1
        while i >= 0 and self._start[i] >= t - self._longest:
            count += not self._ok[i] and self._start[i] + self._lat[i] >= t
            i -= 1
        return count

    def sent_after(self, t: float, lo: int, hi: int) -> int:
        return bisect.bisect_right(self._start, t, lo, hi)

    def start(self, i: int) -> float:
        return float(self._start[i])

    def first_done(self, lo: int, hi: int) -> float:
        return float(min(self._start[i] + self._lat[i] for i in range(lo, hi)))

    def longest_gap(self, lo: int, hi: int) -> float | None:
        up = [self._start[i] + self._lat[i] for i in range(lo, hi) if self._ok[i]]
        prior = lo - 1
        while prior >= 0 and not self._ok[prior]:
            prior -= 1
        if prior >= 0:
            up.append(self._start[prior] + self._lat[prior])
        up.sort()
        return max((b - a for a, b in zip(up, islice(up, 1, None))), default=None)

    def window(self, lo: int, hi: int) -> tuple[int, int, list[float | None]]:
        latencies = sorted(self._lat[i] for i in range(lo, hi) if self._ok[i])
        return hi - lo, hi - lo - len(latencies), [percentile(latencies, q) for q in QUANTILES]


class _NumpyColumns:
    def __init__(self, evidence: Evidence) -> None:
        import numpy as np

        self._np = np
        start = np.frombuffer(evidence.op_start, dtype=np.float64)
        lat = np.frombuffer(evidence.op_latency, dtype=np.float64)
        ok = np.frombuffer(evidence.op_ok, dtype=np.int8).astype(bool)
        self.n = len(start)
        if self.n > 1 and not bool(np.all(start[1:] >= start[:-1])):
            order = np.argsort(start, kind="stable")  # stable: ties keep arrival order, as sorted() does
            start, lat, ok = start[order], lat[order], ok[order]
        self._start, self._lat, self._ok = start, lat, ok
        self._done = start + lat
        self._longest = float(lat.max()) if self.n else 0.0

    def span(self, t_from: float | None, t_to: float | None) -> tuple[int, int]:
        lo = 0 if t_from is None else int(self._np.searchsorted(self._start, t_from, side="left"))
        hi = self.n if t_to is None else int(self._np.searchsorted(self._start, t_to, side="left"))
        return lo, max(lo, hi)

    def failures(self, lo: int, hi: int) -> tuple[int, float | None, float | None]:
        sent = self._start[lo:hi][~self._ok[lo:hi]]
        if not len(sent):
            return 0, None, None
        return len(sent), float(sent[0]), float(sent[-1])

    def failed_in_flight(self, lo: int, t: float) -> int:
        first = int(self._np.searchsorted(self._start, t - self._longest, side="left"))
        ok, done = self._ok[first:lo], self._done[first:lo]
        return int(self._np.count_nonzero(~ok & (done >= t)))

    def sent_after(self, t: float, lo: int, hi: int) -> int:
        return lo + int(self._np.searchsorted(self._start[lo:hi], t, side="right"))

    def start(self, i: int) -> float:
        return float(self._start[i])

    def first_done(self, lo: int, hi: int) -> float:
        return float(self._done[lo:hi].min())

    def longest_gap(self, lo: int, hi: int) -> float | None:
        np = self._np
        up = self._done[lo:hi][self._ok[lo:hi]]
        before = np.flatnonzero(self._ok[:lo])
        if len(before):
            up = np.append(up, self._done[before[-1]])
        if len(up) < 2:
            return None
        return float(np.diff(np.sort(up, kind="stable")).max())  # timsort: completions come nearly sorted

    def window(self, lo: int, hi: int) -> tuple[int, int, list[float | None]]:
        latencies = self._np.sort(self._lat[lo:hi][self._ok[lo:hi]])
        return hi - lo, hi - lo - len(latencies), [percentile(latencies, q) for q in QUANTILES]
