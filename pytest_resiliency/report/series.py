"""The bucketed series behind the timeline chart: bounded size whatever the evidence.

A 10-minute experiment at 200 req/s is 120 000 operations; the chart needs at most a few
hundred numbers. :func:`bucketed` folds the evidence into at most ``max_buckets`` buckets
of a round width (10 ms ... 1 h) and keeps per bucket the successes, failures and the
p50/p99 latency of the successes. Pure: evidence in, builtins out.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from typing import Any

from ..columns import NUMPY_FROM, percentile
from ..timeline import Evidence

MAX_BUCKETS = 120
LOST_MARKS_SHOWN = 200
# Round bucket widths, so the axis reads "500ms buckets", never "437ms buckets".
WIDTHS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


def bucket_width(span: float, max_buckets: int = MAX_BUCKETS, at_least: float = 0.0) -> float:
    """The smallest round width >= ``at_least`` that covers ``span`` seconds in at most ``max_buckets`` buckets."""
    if max_buckets < 1:
        raise ValueError(f"max_buckets={max_buckets!r} must be >= 1")
    for width in WIDTHS:
        if span / width <= max_buckets and width >= at_least:
            return width
    return float(math.ceil(span / max_buckets / 3600.0) * 3600.0)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def bucketed(
    evidence: Evidence,
    start: float,
    end: float,
    lost_acks: Sequence[float] = (),
    lost_total: int | None = None,
    max_buckets: int = MAX_BUCKETS,
) -> dict[str, Any]:
    """The chart series of ``evidence`` from ``start`` to ``end`` (wall-clock, see :func:`span_of`).

    Times in the result are seconds relative to ``t0`` (= ``start``), rounded to 1 µs, so
    the payload stays small and JSON-friendly. Operations before ``start`` go in the first
    bucket, operations after ``end`` in the last: nothing is silently dropped.
    """
    starts = evidence.op_start
    stop = max(end, start)
    # Two operations a bucket at least: a 20 ms monitor in 10 ms buckets would draw a comb.
    width = bucket_width(max(stop - start, 0.0), max_buckets, at_least=2 * (stop - start) / max(len(starts), 1))
    count = max(1, min(max_buckets, math.ceil((stop - start) / width) or 1))
    fold = _fold_numpy if len(starts) >= NUMPY_FROM and _has_numpy() else _fold
    ok, fail, p50, p99 = fold(evidence, start, width, count)
    acks = sorted(a for a in lost_acks if math.isfinite(a))
    return {
        "t0": start,
        "bucket": width,
        "buckets": count,
        "ok": ok,
        "fail": fail,
        "p50": p50,
        "p99": p99,
        "lost_writes": [round(a - start, 6) for a in acks[:LOST_MARKS_SHOWN]],
        "lost_total": len(acks) if lost_total is None else lost_total,
        "dropped": evidence.dropped,
    }


Folded = tuple[list[int], list[int], list[float | None], list[float | None]]


def _fold(evidence: Evidence, start: float, width: float, count: int) -> Folded:
    """Per bucket: successes, failures, p50 and p99 of the successes' latency."""
    ok = [0] * count
    fail = [0] * count
    latency: list[list[float]] = [[] for _ in range(count)]
    for s, lat, good in zip(evidence.op_start, evidence.op_latency, evidence.op_ok, strict=True):
        i = min(count - 1, max(0, int((s - start) // width)))
        if good:
            ok[i] += 1
            latency[i].append(lat)
        else:
            fail[i] += 1
    p50: list[float | None] = []
    p99: list[float | None] = []
    for values in latency:
        values.sort()
        p50.append(_ms(percentile(values, 0.50)))
        p99.append(_ms(percentile(values, 0.99)))
    return ok, fail, p50, p99


def _has_numpy() -> bool:
    return importlib.util.find_spec("numpy") is not None


def _fold_numpy(evidence: Evidence, start: float, width: float, count: int) -> Folded:
    """:func:`_fold` vectorised: the same figures, bit for bit (a test holds them equal)."""
    import numpy as np

    starts = np.frombuffer(evidence.op_start, dtype=np.float64)
    lat = np.frombuffer(evidence.op_latency, dtype=np.float64)
    good = np.frombuffer(evidence.op_ok, dtype=np.int8).astype(bool)
    index = np.clip(np.floor_divide(starts - start, width), 0, count - 1).astype(np.int64)
    ok = np.bincount(index[good], minlength=count)
    fail = np.bincount(index[~good], minlength=count)
    grouped = lat[good][np.argsort(index[good], kind="stable")]  # by bucket (a radix sort on ints)
    bounds = np.concatenate(([0], np.cumsum(ok)))
    p50: list[float | None] = []
    p99: list[float | None] = []
    for i in range(count):
        values = grouped[bounds[i] : bounds[i + 1]]
        n = len(values)
        if not n:
            p50.append(None)
            p99.append(None)
            continue
        ranks = [max(1, math.ceil(q * n)) - 1 for q in (0.50, 0.99)]  # nearest rank, as percentile()
        chosen = np.partition(values, ranks)[ranks]  # the k-th smallest without a full sort
        p50.append(_ms(float(chosen[0])))
        p99.append(_ms(float(chosen[1])))
    return [int(v) for v in ok], [int(v) for v in fail], p50, p99


def lost_ack_times(evidence: Evidence, lost_keys: Sequence[str]) -> list[float]:
    """The earliest acknowledgement time of each lost key (the ledger's rule for RPO)."""
    wanted = set(lost_keys)
    acks: dict[str, float] = {}
    for key, ack, status in zip(evidence.write_keys, evidence.write_ack, evidence.write_status, strict=True):
        if key in wanted and status == 0 and not math.isnan(ack):
            acks[key] = min(ack, acks.get(key, math.inf))
    return sorted(acks.values())


def span_of(evidence: Evidence, started_at: float, finished_at: float) -> tuple[float, float]:
    """The chart's time range: all operations and faults, within the test's own lifetime if empty."""
    if len(evidence) >= NUMPY_FROM and _has_numpy():
        import numpy as np

        starts = np.frombuffer(evidence.op_start, dtype=np.float64)
        times = [float(starts.min())]
        ends = [float((starts + np.frombuffer(evidence.op_latency, dtype=np.float64)).max())]
    elif len(evidence):
        times = [min(evidence.op_start)]
        ends = [max(s + lat for s, lat in zip(evidence.op_start, evidence.op_latency, strict=True))]
    else:
        times, ends = [started_at], [finished_at]
    for fault in evidence.faults:
        times.append(fault.injected_at)
        ends.append(fault.reverted_at if fault.reverted_at is not None else finished_at)
    return min(times), max(ends)
