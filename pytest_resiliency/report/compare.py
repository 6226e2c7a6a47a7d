"""The regression gate: two JSON journals compared test by test (``pytest-resiliency compare``).

A figure has *regressed* when it got worse beyond the threshold **and** beyond the stated
uncertainty: the measured intervals do not overlap. Since issue 12 the RTO is the upper end
of its recovery bracket, so its interval is ``[rto - rto_uncertainty, rto]``; older journals
state only ``resolution`` without saying on which side, so theirs is ``rto ± resolution``;
a journal with neither states no uncertainty (0). Lost writes and RPO come from an exact
ledger, p99 and error rate from the operations themselves: their uncertainty is 0, and a
noisy figure is tamed with its own threshold (``p99:50%``, ``error_rate:0.01``) or ``off``.

Tests are matched by node id. New, vanished and unmeasured tests are listed, never errors.
Reads only journals (plain dicts): usable without pytest, in CI, on journals of any age.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..budget import format_duration, parse_duration
from .journal import JOURNAL_SCHEMA

DEFAULT_MAX_REGRESSION = 0.20
INF = math.inf


class CompareError(ValueError):
    """A journal or threshold that cannot be used; the message says what is accepted."""


@dataclass(frozen=True)
class Figure:
    key: str  # summary key in the journal
    label: str
    kind: str  # "duration", "count" or "ratio": how it prints and what an absolute threshold means


FIGURES = (
    Figure("rto", "RTO", "duration"),
    Figure("rpo", "RPO (time)", "duration"),
    Figure("lost_writes", "lost writes", "count"),
    Figure("p99", "p99", "duration"),
    Figure("error_rate", "error rate", "ratio"),
)
FIGURE_KEYS = tuple(f.key for f in FIGURES)


@dataclass(frozen=True)
class Threshold:
    """How much worse a figure may get: ``relative`` (0.2 = 20 %) or ``absolute`` (its unit); None = off."""

    relative: float | None = DEFAULT_MAX_REGRESSION
    absolute: float | None = None
    off: bool = False

    def allowed(self, baseline: float) -> float:
        if self.absolute is not None:
            return self.absolute
        return (self.relative or 0.0) * baseline

    def describe(self, figure: Figure) -> str:
        if self.off:
            return "off"
        if self.absolute is not None:
            return f"+{_value(figure, self.absolute)}"
        return f"+{(self.relative or 0.0):.0%}"


@dataclass
class Thresholds:
    default: Threshold = field(default_factory=Threshold)
    per_figure: dict[str, Threshold] = field(default_factory=dict)

    def of(self, key: str) -> Threshold:
        return self.per_figure.get(key, self.default)


def _percent(text: str, spec: str) -> float:
    try:
        value = float(text[:-1]) / 100.0
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        raise CompareError(f"--max-regression {spec!r}: {text!r} is not a percentage >= 0 such as 20%")
    return value


def parse_thresholds(specs: list[str] | None) -> Thresholds:
    """``["20%"]``, ``["rto:10%", "p99:off", "lost_writes:0", "p99:50ms", "error_rate:0.01"]``.

    A bare value must be a percentage (it applies to every figure); ``FIGURE:VALUE`` sets one
    figure: a percentage, ``off``, or an absolute amount in the figure's unit (a duration for
    rto, rpo and p99, a whole number for lost_writes, a fraction for error_rate).
    """
    thresholds = Thresholds()
    for spec in specs or []:
        text = spec.strip()
        if ":" not in text:
            if not text.endswith("%"):
                raise CompareError(
                    f"--max-regression {spec!r}: a value for every figure must be a percentage such as 20%; "
                    f"absolute amounts need a figure (FIGURE:VALUE, figures: {', '.join(FIGURE_KEYS)})"
                )
            thresholds.default = Threshold(relative=_percent(text, spec))
            continue
        key, _, value = (part.strip() for part in text.partition(":"))
        figure = next((f for f in FIGURES if f.key == key), None)
        if figure is None:
            raise CompareError(f"--max-regression {spec!r}: unknown figure {key!r}; accepted: {', '.join(FIGURE_KEYS)}")
        if value.lower() == "off":
            thresholds.per_figure[key] = Threshold(relative=None, off=True)
        elif value.endswith("%"):
            thresholds.per_figure[key] = Threshold(relative=_percent(value, spec))
        else:
            thresholds.per_figure[key] = Threshold(relative=None, absolute=_absolute(figure, value, spec))
    return thresholds


def _absolute(figure: Figure, value: str, spec: str) -> float:
    try:
        if figure.kind == "duration":
            return parse_duration(value, figure.key)
        number = float(value)
        if figure.kind == "count" and number != int(number):
            raise ValueError(value)
    except (ValueError, TypeError):
        number = -1.0
    if not math.isfinite(number) or number < 0:
        unit = {
            "duration": "a duration such as 250ms",
            "count": "a whole number of writes",
            "ratio": "a fraction such as 0.01",
        }[figure.kind]
        raise CompareError(f"--max-regression {spec!r}: {value!r} must be a percentage, off, or {unit}")
    return number


# -- reading journals ---------------------------------------------------------------


def load(path: Path | str) -> dict[str, Any]:
    """A journal document, checked enough to compare: a clear error otherwise."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CompareError(f"{path}: no such file (a journal written by --resiliency-json)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CompareError(f"{path}: not a JSON journal ({exc})") from None
    if not isinstance(document, dict) or document.get("schema") != JOURNAL_SCHEMA:
        raise CompareError(f'{path}: not a pytest-resiliency journal (expected "schema": "{JOURNAL_SCHEMA}")')
    tests = document.get("tests")
    if not isinstance(tests, list) or not all(isinstance(t, dict) and isinstance(t.get("nodeid"), str) for t in tests):
        raise CompareError(f'{path}: "tests" must be a list of test entries with a "nodeid"')
    return document


def by_nodeid(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["nodeid"]: t for t in document["tests"]}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def interval(entry: dict[str, Any], key: str) -> tuple[float, float] | None:
    """The figure as (lowest, highest) it may truly be; None when not measured.

    An unrecovered RTO is (inf, inf): worse than any recovery.
    """
    summary = entry.get("summary") or {}
    if key == "rto":
        rto = _number(summary.get("rto"))
        if rto is None:
            return (INF, INF) if summary.get("rto_status") == "not recovered" else None
        uncertainty = _number(summary.get("rto_uncertainty"))
        if uncertainty is not None:  # the bracket: the judged RTO is its upper end
            return max(0.0, rto - uncertainty), rto
        resolution = _number(summary.get("resolution")) or 0.0  # older journals: side unknown
        return max(0.0, rto - resolution), rto + resolution
    value = _number(summary.get(key))
    if key == "rpo" and value is None and _number(summary.get("lost_writes")) is not None:
        value = 0.0  # ledger verified, nothing lost
    return None if value is None else (value, value)


def uncertainty(entry: dict[str, Any]) -> float | None:
    """The RTO's stated uncertainty (``rto_uncertainty``, else the older ``resolution``)."""
    summary = entry.get("summary") or {}
    for key in ("rto_uncertainty", "resolution"):
        value = _number(summary.get(key))
        if value is not None:
            return value
    return None


# -- comparing ----------------------------------------------------------------------

REGRESSED, IMPROVED, UNCHANGED, WITHIN_UNCERTAINTY, NOT_COMPARED = (
    "regressed",
    "improved",
    "unchanged",
    "within uncertainty",
    "not compared",
)


@dataclass(frozen=True)
class Row:
    nodeid: str
    figure: Figure
    baseline: tuple[float, float]
    current: tuple[float, float]
    status: str
    threshold: str
    baseline_uncertainty: float | None = None
    current_uncertainty: float | None = None

    @property
    def regressed(self) -> bool:
        return self.status == REGRESSED


@dataclass
class Comparison:
    rows: list[Row]
    new: list[str]
    vanished: list[str]
    unmeasured: list[str]
    baseline_name: str = "baseline"
    current_name: str = "current"

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.regressed]

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0


def _judge(figure: Figure, base: tuple[float, float], cur: tuple[float, float], threshold: Threshold) -> str:
    if threshold.off:
        return NOT_COMPARED
    if base == cur:
        return UNCHANGED
    if cur[1] == INF and base[1] != INF:
        return REGRESSED  # it recovered before and not now
    if base[1] == INF:
        return IMPROVED if cur[1] != INF else UNCHANGED
    judged_base, judged_cur = base[1], cur[1]  # the judged values (the RTO's upper end)
    if judged_cur < judged_base:
        return IMPROVED if cur[1] < base[0] else WITHIN_UNCERTAINTY
    if judged_cur - judged_base <= threshold.allowed(judged_base):
        return UNCHANGED
    if cur[0] <= base[1]:  # the intervals overlap: not proven worse
        return WITHIN_UNCERTAINTY
    return REGRESSED


def _measured(entry: dict[str, Any]) -> bool:
    return any(interval(entry, f.key) is not None for f in FIGURES)


def compare(
    baseline: dict[str, Any],
    current: dict[str, Any],
    thresholds: Thresholds | None = None,
    baseline_name: str = "baseline",
    current_name: str = "current",
) -> Comparison:
    thresholds = thresholds or Thresholds()
    base, cur = by_nodeid(baseline), by_nodeid(current)
    rows: list[Row] = []
    unmeasured: list[str] = []
    for nodeid in sorted(set(base) & set(cur)):
        if not (_measured(base[nodeid]) and _measured(cur[nodeid])):
            unmeasured.append(nodeid)
            continue
        for figure in FIGURES:
            b, c = interval(base[nodeid], figure.key), interval(cur[nodeid], figure.key)
            if b is None or c is None:
                continue
            threshold = thresholds.of(figure.key)
            stated = (uncertainty(base[nodeid]), uncertainty(cur[nodeid])) if figure.key == "rto" else (None, None)
            status = _judge(figure, b, c, threshold)
            rows.append(Row(nodeid, figure, b, c, status, threshold.describe(figure), *stated))
    return Comparison(
        rows=rows,
        new=sorted(set(cur) - set(base)),
        vanished=sorted(set(base) - set(cur)),
        unmeasured=unmeasured,
        baseline_name=baseline_name,
        current_name=current_name,
    )


# -- rendering ----------------------------------------------------------------------


def _value(figure: Figure, value: float) -> str:
    if value == INF:
        return "not recovered"
    if figure.kind == "duration":
        return format_duration(value)
    if figure.kind == "count":
        return str(int(value))
    return f"{value:.2%}"


def cell(figure: Figure, bounds: tuple[float, float], stated: float | None = None) -> str:
    """The judged value, with its stated uncertainty when it has one."""
    low, high = bounds
    if high == INF or low == high:
        return _value(figure, high)
    return f"{_value(figure, high)} (±{format_duration(stated if stated is not None else high - low)})"


def change(row: Row) -> str:
    base, cur = row.baseline[1], row.current[1]
    if base == cur:
        return "="
    if INF in (base, cur):
        return "n/a"
    if base == 0:
        return "new" if cur > 0 else "="
    ratio = cur / base
    text = f"{ratio - 1:+.0%}"
    return f"{text} ({ratio:.1f}x)" if ratio >= 2 else text


HEADERS = ("test", "figure", "baseline", "current", "change", "threshold", "result")


def _row_cells(row: Row) -> tuple[str, ...]:
    status = "REGRESSED" if row.regressed else row.status
    return (
        row.nodeid,
        row.figure.label,
        cell(row.figure, row.baseline, row.baseline_uncertainty),
        cell(row.figure, row.current, row.current_uncertainty),
        change(row),
        row.threshold,
        status,
    )


def headline(result: Comparison) -> str:
    tests = len({r.nodeid for r in result.rows})
    regressed = result.regressions
    if regressed:
        names = len({r.nodeid for r in regressed})
        text = f"{len(regressed)} regression{'s' if len(regressed) != 1 else ''} in {names} of {tests} tests"
    else:
        text = f"no regression in {tests} compared test{'s' if tests != 1 else ''}"
    extras = [
        f"{len(items)} {label}"
        for items, label in ((result.new, "new"), (result.vanished, "vanished"), (result.unmeasured, "unmeasured"))
        if items
    ]
    return text + (f" ({', '.join(extras)})" if extras else "")


def text_lines(result: Comparison) -> list[str]:
    """The terminal table, then the listed new / vanished / unmeasured tests, then the headline."""
    lines = [f"resiliency compare: {result.baseline_name} -> {result.current_name}"]
    if result.rows:
        table = [HEADERS] + [_row_cells(r) for r in result.rows]
        widths = [max(len(r[i]) for r in table) for i in range(len(HEADERS))]
        rendered = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table]
        rendered.insert(1, "  ".join("-" * w for w in widths))
        lines += rendered
    for items, label in (
        (result.new, "new (not in the baseline)"),
        (result.vanished, "vanished (not in this run)"),
        (result.unmeasured, "unmeasured (no figure in one of the runs)"),
    ):
        if items:
            lines.append(f"{label}: {len(items)}")
            lines += [f"  {nodeid}" for nodeid in items]
    lines.append(("FAILED: " if result.regressions else "OK: ") + headline(result))
    return lines


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown(result: Comparison) -> str:
    """A Markdown section for a CI job summary ($GITHUB_STEP_SUMMARY): regressions first."""
    icon = "❌" if result.regressions else "✅"
    out = [
        f"### {icon} Resiliency regression gate",
        "",
        f"{_md(headline(result))} — `{_md(result.baseline_name)}` → `{_md(result.current_name)}`",
        "",
    ]
    if result.rows:
        ordered = sorted(result.rows, key=lambda r: (not r.regressed, r.nodeid, FIGURE_KEYS.index(r.figure.key)))
        out.append("| " + " | ".join(h.capitalize() for h in HEADERS) + " |")
        out.append("|" + "---|" * len(HEADERS))
        for row in ordered:
            cells = list(_row_cells(row))
            cells[0] = "`" + _md(cells[0]).replace("`", "'") + "`"
            if row.regressed:
                cells[-1] = "❌ **regressed**"
            out.append("| " + " | ".join(_md(c) if i else c for i, c in enumerate(cells)) + " |")
        out.append("")
    for items, label in ((result.new, "New"), (result.vanished, "Vanished"), (result.unmeasured, "Unmeasured")):
        if items:
            out.append(f"**{label}:** " + ", ".join(f"`{_md(n)}`" for n in items))
            out.append("")
    return "\n".join(out)


def as_json(result: Comparison) -> dict[str, Any]:
    def bounds(b: tuple[float, float]) -> list[float | None]:
        return [None if v == INF else v for v in b]

    return {
        "regressed": bool(result.regressions),
        "headline": headline(result),
        "rows": [
            {
                "nodeid": r.nodeid,
                "figure": r.figure.key,
                "baseline": bounds(r.baseline),
                "current": bounds(r.current),
                "status": r.status,
                "threshold": r.threshold,
            }
            for r in result.rows
        ],
        "new": result.new,
        "vanished": result.vanished,
        "unmeasured": result.unmeasured,
    }


def append_markdown(path: Path, result: Comparison) -> None:
    """Append (CI summaries are shared by the job's steps), creating the file if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(markdown(result) + "\n")
