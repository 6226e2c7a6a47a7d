"""Pure judgement: a :class:`~pytest_resiliency.measure.Measurement` held against a Budget.

Every breached NFR becomes one :class:`Breach` clause. RTO and RPO have their own rules
(episodes, the write ledger); the NFRs that compare one measured figure with a limit
(``rpo_writes``, ``error_rate``, ``p99``, ``alert_within``) are rows of one table, so adding
an NFR is adding a row. No I/O and no clocks, like the measurement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .budget import Budget, format_duration

if TYPE_CHECKING:
    from .measure import Episode, Measurement


@dataclass(frozen=True)
class Breach:
    nfr: str
    measured: float | None
    budget: float
    text: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    breaches: tuple[Breach, ...]
    notes: tuple[str, ...] = ()  # what the reader must know about the evidence (never a breach)

    @property
    def passed(self) -> bool:
        return not self.breaches

    @property
    def line(self) -> str:
        return "; ".join(b.text for b in self.breaches)

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "line": self.line,
            "breaches": [b.as_dict() for b in self.breaches],
            "notes": list(self.notes),
        }


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _episode_detail(e: Episode) -> str:
    parts = []
    if e.detection_delay is not None:
        parts.append(f"first failure +{format_duration(e.detection_delay)}")
    if e.recovery_from is not None and e.t_recovered is not None:
        parts.append(
            f"last seen down +{format_duration(e.recovery_from - e.t_inject)}, "
            f"recovered by +{format_duration(e.t_recovered - e.t_inject)}"
        )
    parts.append(_plural(e.failed, "failed operation"))
    return ", ".join(parts)


def rto_text(rto: float, uncertainty: float | None) -> str:
    """``2.01s (±0.98s)``: the judged upper end with the width of its bracket."""
    return f"{format_duration(rto)} (±{format_duration(uncertainty or 0.0)})"


SPARSE_SHARE = 0.10  # an uncertainty above this share of the RTO budget is reported


def evidence_notes(m: Measurement, budget: Budget) -> list[str]:
    """Say when the evidence around recovery is too sparse for the budget, and how to fix it."""
    worst = m.worst
    if budget.rto is None or worst is None or worst.uncertainty is None or worst.recovery_from is None:
        return []
    if worst.rto is None or worst.uncertainty <= SPARSE_SHARE * budget.rto:
        return []
    down = format_duration(worst.recovery_from - worst.t_inject)
    return [
        f"evidence too sparse around recovery: it happened between +{down}"
        f" and +{format_duration(worst.rto)} (±{format_duration(worst.uncertainty)}, more than "
        f"{SPARSE_SHARE:.0%} of the {format_duration(budget.rto)} budget); the RTO is judged on the upper end. "
        "Send more operations around recovery: more concurrent clients or open-loop load, "
        "experiment.monitor(..., every=...) with concurrency, and client timeouts well below the budget"
    ]


def _rto_breach(m: Measurement, budget: float) -> Breach | None:
    worst = m.worst
    limit = format_duration(budget)
    if worst is None:
        return Breach("rto", None, budget, f"RTO not measured: no fault was injected (budget {limit})")
    if worst.status == "no evidence":
        return Breach(
            "rto",
            None,
            budget,
            f"RTO unknown: no evidence after the fault ({', '.join(worst.faults)}): "
            f"no operation was observed; start load or experiment.monitor() (budget {limit})",
        )
    if worst.status == "not recovered":
        return Breach(
            "rto",
            None,
            budget,
            f"RTO not recovered within {format_duration(worst.timeout)} > budget {limit} ({_episode_detail(worst)})",
        )
    assert worst.rto is not None
    if worst.rto > budget:
        return Breach(
            "rto",
            worst.rto,
            budget,
            f"RTO {rto_text(worst.rto, worst.uncertainty)} > budget {limit} ({_episode_detail(worst)})",
        )
    return None


def _rpo_breach(m: Measurement, budget: float) -> Breach | None:
    """RPO in time: any lost acknowledged write breaches a zero budget, else the age of the oldest."""
    ledger = m.ledger
    assert ledger is not None
    rpo = ledger.rpo or 0.0
    if ledger.lost and (rpo > budget or budget == 0):
        return Breach(
            "rpo",
            rpo,
            budget,
            f"RPO {format_duration(rpo)} > budget {format_duration(budget)} "
            f"({_plural(ledger.lost, 'acknowledged write')} lost)",
        )
    return None


@dataclass(frozen=True)
class Limit:
    """One NFR that compares one measured figure with its budget.

    ``measured`` returns None when there is no evidence for the figure; ``unknown`` is then
    the breach text. ``exceeded`` is the breach text for a figure above the budget.
    """

    nfr: str
    measured: Callable[[Measurement], float | None]
    unknown: Callable[[Measurement, float], str]
    exceeded: Callable[[Measurement, float, float], str]
    needs_ledger: bool = False

    def breach(self, m: Measurement, budget: float) -> Breach | None:
        value = self.measured(m)
        if value is None:
            return Breach(self.nfr, None, budget, self.unknown(m, budget))
        if value > budget:
            return Breach(self.nfr, value, budget, self.exceeded(m, value, budget))
        return None


def _not_verified(name: str) -> Callable[[Measurement, float], str]:
    return lambda m, b: f"{name} not measured: the writes were never verified; call experiment.verify_writes(reader)"


def _lost(m: Measurement) -> float | None:
    return None if m.ledger is None else float(m.ledger.lost)


LIMITS: tuple[Limit, ...] = (
    Limit(
        "rpo_writes",
        _lost,
        _not_verified("RPO (writes)"),
        lambda m, v, b: f"RPO {int(v)} writes lost > budget {int(b)}",
        needs_ledger=True,
    ),
    Limit(
        "error_rate",
        lambda m: m.fault_window.error_rate,
        lambda m, b: "error rate unknown: no operation in the fault window (no evidence)",
        lambda m, v, b: (
            f"error rate {v:.1%} > budget {b:.1%} "
            f"({m.fault_window.failed} of {m.fault_window.operations} operations failed in the fault window)"
        ),
    ),
    Limit(
        "p99",
        lambda m: m.fault_window.p99,
        lambda m, b: "p99 unknown: no successful operation in the fault window (no evidence)",
        lambda m, v, b: (
            f"p99 {format_duration(v)} > budget {format_duration(b)} "
            f"(fault window, {m.fault_window.operations - m.fault_window.failed} successful operations)"
        ),
    ),
    Limit(
        "alert_within",
        lambda m: m.alert_delay,
        lambda m, b: f"no alert raised (budget {format_duration(b)})",
        lambda m, v, b: f"alert after {format_duration(v)} > budget {format_duration(b)}",
    ),
)


def judge(m: Measurement, budget: Budget) -> Verdict:
    """Hold a measurement against a budget; every breached NFR gets one clause, in budget order."""
    breaches: list[Breach] = []
    if budget.rto is not None and (b := _rto_breach(m, budget.rto)):
        breaches.append(b)
    if budget.rpo is not None:
        if m.ledger is None:
            breaches.append(Breach("rpo", None, budget.rpo, _not_verified("RPO")(m, budget.rpo)))
        elif b := _rpo_breach(m, budget.rpo):
            breaches.append(b)
    for limit in LIMITS:
        value = getattr(budget, limit.nfr)
        if value is not None and (b := limit.breach(m, float(value))):
            breaches.append(b)
    return Verdict(tuple(breaches), tuple(evidence_notes(m, budget)))


__all__ = ["LIMITS", "Breach", "Limit", "Verdict", "evidence_notes", "judge", "rto_text"]
