"""Pure measurement: Evidence + criteria -> Measurement (the verdict is in ``verdict.py``).

No I/O and no clocks here, so every definition can be tested on synthetic timelines.
The definitions are the contract in the README ("Measurement definitions"):

* ``t_inject`` is taken immediately before a fault acts.
* ``t_first_fail`` is the start of the first failed operation at or after ``t_inject``.
* ``t_recovered`` is the start of the first success after the last failure of the
  episode, provided at least ``successes`` successes follow and the evidence goes on for
  ``window`` seconds without a failure; ``RTO = t_recovered - t_inject`` (0 when nothing
  failed, unknown when nothing was observed at all).
* Faults injected while another is active form one *episode*; an episode's evidence
  ends where the next episode starts.
* Ledger: lost = acknowledged and absent, recovered = indeterminate and present,
  unexpected = present and never written. ``RPO = t_inject - min(ack of lost writes)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .budget import Criteria
from .columns import Columns, columns
from .columns import percentile as percentile  # re-exported: the load stats and the chart use it
from .timeline import WRITE_FAIL, WRITE_INDETERMINATE, WRITE_OK, Evidence, FaultRecord


@dataclass(frozen=True)
class Episode:
    """Recovery from one fault (or several overlapping ones).

    The recovery is known only inside a bracket: ``recovery_from`` is the latest evidence
    of being down (the send time of the last failure), ``t_recovered`` the completion of
    the first success sent after it. The RTO is judged on the upper end; the bracket's
    width is its ``uncertainty``.
    """

    t_inject: float
    faults: tuple[str, ...]
    end: float | None  # where the next episode starts; None for the last one
    operations: int
    failed: int
    t_first_fail: float | None
    recovery_from: float | None  # lower end of the bracket: latest evidence of being down
    t_recovered: float | None  # upper end: completion of the first success of the recovery window
    rto: float | None  # None when not recovered or no evidence
    uncertainty: float | None  # bracket width (plus clock uncertainty); 0 when nothing failed
    detection_delay: float | None
    outage: float | None
    longest_gap: float | None
    timeout: float

    @property
    def status(self) -> str:
        if self.operations == 0:
            return "no evidence"
        return "recovered" if self.rto is not None else "not recovered"

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "faults": list(self.faults),
            "status": self.status,
            "recovery_by": self.t_recovered,
        }


@dataclass(frozen=True)
class WindowStats:
    """Error rate over all operations and latency over successful ones, in one time window."""

    start: float | None
    end: float | None
    operations: int
    failed: int
    error_rate: float | None
    p50: float | None
    p95: float | None
    p99: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LedgerResult:
    """Jepsen-style classification of the write ledger against what was read back."""

    written: int
    acknowledged: int
    failed: int
    indeterminate: int
    lost: int
    recovered: int
    unexpected: int
    failed_present: int
    lost_keys: tuple[str, ...]
    rpo: float | None  # seconds; None when nothing was lost relative to a fault

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "lost_keys": list(self.lost_keys)}


@dataclass(frozen=True)
class Measurement:
    """Everything computed from one test's timeline."""

    operations: int
    dropped: int
    sources: tuple[str, ...]
    episodes: tuple[Episode, ...]
    baseline: WindowStats
    fault_window: WindowStats
    ledger: LedgerResult | None
    alert_delay: float | None
    writes: int
    criteria: Criteria = field(default_factory=Criteria)
    clock_uncertainty: float = 0.0  # widening of every bracket for remote clocks (load hosts)

    @property
    def status(self) -> str:
        """``no fault``, ``no evidence``, ``not recovered`` or ``recovered`` (worst episode)."""
        if not self.episodes:
            return "no fault"
        for status in ("no evidence", "not recovered"):
            if any(e.status == status for e in self.episodes):
                return status
        return "recovered"

    @property
    def worst(self) -> Episode | None:
        """The episode that decides the RTO: unknown before unrecovered before the longest."""
        if not self.episodes:
            return None
        order = {"no evidence": 0, "not recovered": 1, "recovered": 2}
        return min(self.episodes, key=lambda e: (order[e.status], -(e.rto or 0.0)))

    @property
    def rto(self) -> float | None:
        worst = self.worst
        return worst.rto if worst is not None and self.status == "recovered" else None

    @property
    def uncertainty(self) -> float | None:
        """Width of the worst episode's recovery bracket: how well the RTO is known."""
        worst = self.worst
        return worst.uncertainty if worst is not None and self.status == "recovered" else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "rto": self.rto,
            "uncertainty": self.uncertainty,
            "clock_uncertainty": self.clock_uncertainty,
            "operations": self.operations,
            "dropped": self.dropped,
            "sources": list(self.sources),
            "episodes": [e.as_dict() for e in self.episodes],
            "baseline": self.baseline.as_dict(),
            "fault_window": self.fault_window.as_dict(),
            "ledger": self.ledger.as_dict() if self.ledger else None,
            "alert_delay": self.alert_delay,
            "writes": self.writes,
            "criteria": self.criteria.as_dict(),
        }


# -- recovery ---------------------------------------------------------------------


def episodes_of(faults: Sequence[FaultRecord]) -> list[tuple[float, tuple[str, ...]]]:
    """Group faults into episodes: a fault injected while an earlier one is active joins it."""
    groups: list[tuple[float, float, list[str]]] = []
    for fault in sorted(faults, key=lambda f: f.injected_at):
        end = fault.reverted_at if fault.reverted_at is not None else math.inf
        if groups and fault.injected_at <= groups[-1][1]:
            start, active_until, names = groups[-1]
            groups[-1] = (start, max(active_until, end), [*names, fault.name])
        else:
            groups.append((fault.injected_at, end, [fault.name]))
    return [(start, tuple(names)) for start, _, names in groups]


def _episode(
    col: Columns,
    lo: int,
    hi: int,
    t_inject: float,
    end: float | None,
    names: tuple[str, ...],
    criteria: Criteria,
    clock: float,
) -> Episode:
    """Recovery from one episode, from the operations ``lo..hi`` (sent in ``[t_inject, end)``).

    A failure proves the service down when it was sent (or while it waited); a success
    proves it up only by its completion, and only after the last failure if it was sent
    after it. So the recovery lies in ``(send of the last failure, completion of the
    first success sent after it]``: the RTO is the upper end, the width its uncertainty.
    A failure in flight when the fault was injected (sent before, given up after) proves
    the service down at some point after ``t_inject``: it counts as sent at ``t_inject``.
    """
    failed, t_first_fail, last_fail = col.failures(lo, hi)
    in_flight = col.failed_in_flight(lo, t_inject)
    if in_flight:
        failed += in_flight
        t_first_fail = t_inject
        last_fail = t_inject if last_fail is None else last_fail
    recovery_from = t_recovered = rto = uncertainty = None
    if hi > lo and not failed:
        rto = uncertainty = 0.0
    elif last_fail is not None:
        after = col.sent_after(last_fail, lo, hi)
        if hi - after >= max(criteria.successes, 1):
            first_up = col.first_done(after, hi)
            if col.start(hi - 1) - first_up >= criteria.window and first_up + clock - t_inject <= criteria.timeout:
                recovery_from, t_recovered = last_fail - clock, first_up + clock
                rto = t_recovered - t_inject
                uncertainty = t_recovered - recovery_from
    return Episode(
        t_inject=t_inject,
        faults=names,
        end=end,
        operations=hi - lo,
        failed=failed,
        t_first_fail=t_first_fail,
        recovery_from=recovery_from,
        t_recovered=t_recovered,
        rto=rto,
        uncertainty=uncertainty,
        detection_delay=None if t_first_fail is None else t_first_fail - t_inject,
        outage=None if t_recovered is None or t_first_fail is None else t_recovered - t_first_fail,
        longest_gap=col.longest_gap(lo, hi),
        timeout=criteria.timeout,
    )


def _window_stats(col: Columns, start: float | None, end: float | None) -> WindowStats:
    """Error rate and success latency percentiles for operations sent in ``[start, end)``."""
    lo, hi = col.span(start, end)
    operations, failed, (p50, p95, p99) = col.window(lo, hi)
    return WindowStats(
        start=col.start(lo) if operations else None,
        end=col.start(hi - 1) if operations else None,
        operations=operations,
        failed=failed,
        error_rate=failed / operations if operations else None,
        p50=p50,
        p95=p95,
        p99=p99,
    )


# -- ledger -----------------------------------------------------------------------


def verify_ledger(evidence: Evidence, present: Iterable[str], injections: Sequence[float]) -> LedgerResult:
    """Classify every written key against the keys read back (exact counts, no sampling).

    A key written several times takes its best outcome (ok > indeterminate > fail) and its
    earliest acknowledgement. A lost write is charged to the first injection at or after
    its acknowledgement; ``rpo`` is the largest such distance (0 if acknowledged after the
    last injection, ``None`` when nothing was lost or no fault was injected).
    """
    present_set = set(present)
    rank = {WRITE_OK: 2, WRITE_INDETERMINATE: 1, WRITE_FAIL: 0}
    best: dict[str, tuple[int, float]] = {}
    for key, start, ack, status in zip(
        evidence.write_keys, evidence.write_start, evidence.write_ack, evidence.write_status, strict=True
    ):
        when = start if math.isnan(ack) else ack
        previous = best.get(key)
        if (
            previous is None
            or rank[status] > rank[previous[0]]
            or (rank[status] == rank[previous[0]] and when < previous[1])
        ):
            best[key] = (status, when)
    by_status = {WRITE_OK: 0, WRITE_FAIL: 0, WRITE_INDETERMINATE: 0}
    lost: list[tuple[float, str]] = []
    recovered = failed_present = 0
    for key, (status, when) in best.items():
        by_status[status] += 1
        if status == WRITE_OK and key not in present_set:
            lost.append((when, key))
        elif status == WRITE_INDETERMINATE and key in present_set:
            recovered += 1
        elif status == WRITE_FAIL and key in present_set:
            failed_present += 1
    lost.sort()
    rpo: float | None = None
    ordered = sorted(injections)
    if lost and ordered:
        distances = []
        for ack, _ in lost:
            later = [t for t in ordered if t >= ack]
            distances.append(later[0] - ack if later else 0.0)
        rpo = max(distances)
    return LedgerResult(
        written=len(best),
        acknowledged=by_status[WRITE_OK],
        failed=by_status[WRITE_FAIL],
        indeterminate=by_status[WRITE_INDETERMINATE],
        lost=len(lost),
        recovered=recovered,
        unexpected=len(present_set - best.keys()),
        failed_present=failed_present,
        lost_keys=tuple(key for _, key in lost),
        rpo=rpo,
    )


# -- measurement ------------------------------------------------------------------


def measure(
    evidence: Evidence,
    criteria: Criteria,
    present: Iterable[str] | None = None,
    source: str | None = None,
) -> Measurement:
    """The measurement of a timeline; ``present`` is the read-back key set, if writes were verified.

    ``source`` restricts the operations to one evidence source (``"load"``,
    ``"probe:health"``); by default every operation counts.
    """
    if source is not None:
        evidence = _only_source(evidence, source)
    groups = episodes_of(evidence.faults)
    col = columns(evidence)
    clock = clock_uncertainty(evidence)
    episodes = []
    for i, (t_inject, names) in enumerate(groups):
        end = groups[i + 1][0] if i + 1 < len(groups) else None
        lo, hi = col.span(t_inject, end)
        episodes.append(_episode(col, lo, hi, t_inject, end, names, criteria, clock))
    first_inject = groups[0][0] if groups else None
    baseline = _window_stats(col, None, first_inject)
    if first_inject is None:
        fault_window = _window_stats(col, math.inf, None)
    else:
        fault_window = _window_stats(col, first_inject, fault_window_end(evidence.faults, episodes, criteria))
    alerts = [m.at for m in evidence.marks if m.kind == "alert"]
    alert_delay = None
    if first_inject is not None:
        after = [t - first_inject for t in alerts if t >= first_inject]
        alert_delay = min(after, default=None)
    ledger = None
    if present is not None:
        ledger = verify_ledger(evidence, present, [t for t, _ in groups])
    return Measurement(
        operations=len(evidence),
        dropped=evidence.dropped,
        sources=tuple(evidence.sources()),
        episodes=tuple(episodes),
        baseline=baseline,
        fault_window=fault_window,
        ledger=ledger,
        alert_delay=alert_delay,
        writes=len(evidence.write_keys),
        criteria=criteria,
        clock_uncertainty=clock,
    )


def clock_uncertainty(evidence: Evidence) -> float:
    """How far remote timestamps may be off after correction (``clock`` marks of load hosts).

    Evidence from another host's clock widens every recovery bracket by this much on
    both sides, so a skew can never make a PASS that the truth would not.
    """
    values = [m.detail.get("uncertainty_s") for m in evidence.marks if m.kind == "clock"]
    numbers = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return max((v for v in numbers if math.isfinite(v) and v > 0), default=0.0)


def fault_window_end(faults: Sequence[FaultRecord], episodes: Sequence[Episode], criteria: Criteria) -> float | None:
    """The fault window ends ``criteria.window`` after the later of the last revert and recovery.

    That is the fault plus the stretch that confirmed recovery: a fixed span, so load that
    goes on long after recovery does not dilute the error rate. ``None`` (to the end of the
    evidence) while a fault is active or an episode has not recovered.
    """
    if any(f.reverted_at is None for f in faults) or any(e.status != "recovered" for e in episodes):
        return None
    ends = [f.reverted_at for f in faults if f.reverted_at is not None]
    ends += [e.t_recovered for e in episodes if e.t_recovered is not None]
    return max(ends) + criteria.window


def _only_source(evidence: Evidence, source: str) -> Evidence:
    if source not in evidence.strings:
        raise ValueError(f"no evidence source {source!r}; the timeline has: {', '.join(evidence.sources()) or 'none'}")
    ident = evidence.strings.index(source)
    keep = [i for i, s in enumerate(evidence.op_source) if s == ident]
    columns = {
        name: type(getattr(evidence, name))(
            getattr(evidence, name).typecode, (getattr(evidence, name)[i] for i in keep)
        )
        for name in ("op_start", "op_latency", "op_ok", "op_name", "op_source", "op_error")
    }
    return Evidence(**{**evidence.__dict__, **columns})
