"""The payload: one test's budget, measurement, faults and verdict as builtins only.

It rides on the pytest report (``report.resiliency``), so it must survive xdist's
execnet serialisation: dicts, lists, str, numbers, bool and None, nothing else.
"""

from __future__ import annotations

import math
import time
from typing import Any

from ..experiment import Experiment
from ..measure import Measurement
from ..verdict import Verdict
from .secrets import scrub
from .series import bucketed, lost_ack_times, span_of

SCHEMA_VERSION = 2
# A string attachment (a log tail) longer than this keeps its end: the payload crosses
# xdist and lands in every report, so it must stay small.
MAX_ATTACHMENT_CHARS = 20_000

# Outcome of the resiliency verdict, independent of pytest's (xfail, skip...).
PASS, BREACH, ABORTED, ERROR = "pass", "breach", "aborted", "error"


def plain(value: Any) -> Any:
    """Builtins only: non-finite floats become None (JSON has no NaN), unknown objects str()."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    return str(value)


def summary(measurement: Measurement, verdict: Verdict | None = None) -> dict[str, Any]:
    """The flat headline figures reports show in columns.

    ``rto`` is the upper end of the recovery bracket (what is judged); ``rto_uncertainty``
    its width; ``evidence_note`` says when that width is large against the budget.
    """
    ledger = measurement.ledger
    fw = measurement.fault_window
    notes = verdict.notes if verdict is not None else ()
    return {
        "rto": measurement.rto,
        "rto_status": measurement.status,
        "rto_uncertainty": measurement.uncertainty,
        "evidence_note": notes[0] if notes else None,
        "rpo": ledger.rpo if ledger and ledger.lost else (0.0 if ledger else None),
        "lost_writes": ledger.lost if ledger else None,
        "error_rate": fw.error_rate,
        "p99": fw.p99,
        "baseline_p99": measurement.baseline.p99,
        "failed_operations": sum(e.failed for e in measurement.episodes),
        "operations": measurement.operations,
        "alert_delay": measurement.alert_delay,
    }


def bounded(value: Any) -> Any:
    """Long strings keep their tail (the end of a log is what explains an outage)."""
    if isinstance(value, str) and len(value) > MAX_ATTACHMENT_CHARS:
        cut = len(value) - MAX_ATTACHMENT_CHARS
        return f"[... {cut} characters cut ...]\n" + value[cut:]
    if isinstance(value, dict):
        return {k: bounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [bounded(v) for v in value]
    return value


def build(
    experiment: Experiment, measurement: Measurement, verdict: Verdict, outcome: str, errors: list[str]
) -> dict[str, Any]:
    evidence = experiment.timeline.snapshot()
    finished_at = time.time()
    ledger = measurement.ledger
    start, end = span_of(evidence, experiment.started_at, finished_at)
    series = bucketed(
        evidence,
        start,
        end,
        lost_acks=lost_ack_times(evidence, ledger.lost_keys) if ledger else (),
        lost_total=ledger.lost if ledger else None,
    )
    payload = plain(
        {
            "schema": SCHEMA_VERSION,
            "nodeid": experiment.nodeid,
            "started_at": experiment.started_at,
            "finished_at": finished_at,
            "outcome": outcome,
            "aborted": experiment.aborted,
            "errors": errors,
            "budget": experiment.budget.as_dict(),
            "criteria": experiment.criteria.as_dict(),
            "summary": summary(measurement, verdict),
            "measurement": measurement.as_dict(),
            "verdict": verdict.as_dict(),
            "faults": [f.record.as_dict() for f in experiment.faults if f.record is not None],
            "marks": [{"at": m.at, "kind": m.kind, "name": m.name, "detail": m.detail} for m in evidence.marks],
            "series": series,
            "attachments": bounded(experiment.resolved_attachments()),
        }
    )
    scrubbed: dict[str, Any] = scrub(payload)
    return scrubbed


def junit_properties(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """Per-testcase ``<properties>``: every measured figure and its budget, when known.

    Figures that were not measured (no ledger, no fault) are left out rather than
    written as ``None``, so a CI parser can treat a present property as a number.
    """
    s, b = payload["summary"], payload["budget"]
    episodes = payload["measurement"]["episodes"]

    def worst(key: str) -> Any:
        values = [e[key] for e in episodes if e[key] is not None]
        return max(values) if values else None

    pairs: list[tuple[str, Any]] = [
        ("resiliency.outcome", payload["outcome"]),
        ("resiliency.status", s["rto_status"]),
        ("resiliency.rto_s", s["rto"]),
        ("resiliency.rto_budget_s", b["rto"]),
        ("resiliency.rto_uncertainty_s", s["rto_uncertainty"]),
        ("resiliency.rpo_s", s["rpo"]),
        ("resiliency.rpo_budget_s", b["rpo"]),
        ("resiliency.lost_writes", s["lost_writes"]),
        ("resiliency.rpo_writes_budget", b["rpo_writes"]),
        ("resiliency.error_rate", s["error_rate"]),
        ("resiliency.error_rate_budget", b["error_rate"]),
        ("resiliency.p99_s", s["p99"]),
        ("resiliency.p99_budget_s", b["p99"]),
        ("resiliency.alert_delay_s", s["alert_delay"]),
        ("resiliency.alert_within_budget_s", b["alert_within"]),
        ("resiliency.detection_delay_s", worst("detection_delay")),
        ("resiliency.outage_s", worst("outage")),
        ("resiliency.longest_gap_s", worst("longest_gap")),
        ("resiliency.baseline_p99_s", s["baseline_p99"]),
        ("resiliency.failed_operations", s["failed_operations"]),
        ("resiliency.operations", s["operations"]),
        ("resiliency.disruption", b["disruption"]),
        ("resiliency.tier", b["tier"]),
    ]
    return [(name, _fmt(value)) for name, value in pairs if value is not None]


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
