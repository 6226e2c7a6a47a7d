"""The end-of-run ``resiliency summary``: one row per experiment, measured / budget, that fits.

The table never exceeds the width it is given (the terminal's, capped at
``resiliency_summary_width``, 120 by default): long node ids are shortened in the
middle, and when even that is not enough (a narrow terminal) each experiment takes two
lines instead of one. ``-v`` adds the full node id and every figure per experiment.
"""

from __future__ import annotations

import posixpath
import textwrap
from collections.abc import Iterable
from typing import Any

from ..budget import format_duration

__all__ = ["format_duration", "render", "row", "rto_text", "shorten", "table", "verdict_label"]


HEADERS = ("test", "RTO", "RPO", "error rate", "p99", "verdict")
DEFAULT_WIDTH = 120
GAP = "  "
ELLIPSIS = "..."
# Below this the test column says too little to be worth a table row: stack instead.
MIN_TEST_WIDTH = 24
STACK_INDENT = "    "


def rto_text(summary: dict[str, Any]) -> str | None:
    """``2.01s (±980ms)``: the judged RTO and the width of its recovery bracket, when known.

    ``rto_uncertainty`` is read with ``.get`` so payloads written before it existed still render.
    """
    rto = summary.get("rto")
    if rto is None:
        return None
    text = format_duration(rto)
    uncertainty = summary.get("rto_uncertainty")
    if uncertainty is not None and rto > 0:
        text += f" (±{format_duration(uncertainty)})"
    return text


def _rto(summary: dict[str, Any], budget: float | None) -> str:
    status = summary.get("rto_status")
    text = rto_text(summary) or (status if status and status != "recovered" else "-")
    return f"{text} / {format_duration(budget)}" if budget is not None else text


def _seconds(measured: float | None, budget: float | None) -> str:
    text = format_duration(measured) if measured is not None else "-"
    return f"{text} / {format_duration(budget)}" if budget is not None else text


def _rpo(summary: dict[str, Any], budget: dict[str, Any]) -> str:
    if summary["lost_writes"] is None:
        return "not verified" if budget["rpo"] is not None or budget["rpo_writes"] is not None else "-"
    text = f"{format_duration(summary['rpo'] or 0.0)} ({summary['lost_writes']} lost)"
    return f"{text} / {format_duration(budget['rpo'])}" if budget["rpo"] is not None else text


def _rate(measured: float | None, budget: float | None) -> str:
    text = f"{measured:.1%}" if measured is not None else "-"
    return f"{text} / {budget:.1%}" if budget is not None else text


def verdict_label(entry: dict[str, Any]) -> str:
    outcome = entry["outcome"]
    label = {"pass": "PASS", "breach": "BREACH", "aborted": "ABORTED", "error": "ERROR"}[outcome]
    return f"{label} (xfail)" if entry.get("xfail") else label


def row(entry: dict[str, Any]) -> tuple[str, ...]:
    """The six cells of one experiment: node id, then measured / budget per NFR, then the verdict."""
    s, b = entry["summary"], entry["budget"]
    return (
        entry["nodeid"],
        _rto(s, b["rto"]),
        _rpo(s, b),
        _rate(s["error_rate"], b["error_rate"]),
        _seconds(s["p99"], b["p99"]),
        verdict_label(entry),
    )


def shorten(text: str, width: int) -> str:
    """Cut the middle out of ``text`` so it fits ``width``; the end (the test name) keeps more."""
    if len(text) <= width:
        return text
    if width <= len(ELLIPSIS):
        return text[-width:] if width > 0 else ""
    keep = width - len(ELLIPSIS)
    head = keep // 3
    return text[:head] + ELLIPSIS + text[len(text) - (keep - head) :]


def _ordered(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(entries, key=lambda e: e["nodeid"])


def common_dir(nodeids: list[str]) -> str:
    """The directory every node id starts with (``resiliency_tests/``), or ``""``."""
    if len(nodeids) < 2:
        return ""
    dirs = [posixpath.dirname(n.split("::", 1)[0]) for n in nodeids]
    if not all(dirs):
        return ""
    shared = posixpath.commonpath(dirs)
    return f"{shared}/" if shared else ""


def table(entries: list[dict[str, Any]], width: int = DEFAULT_WIDTH) -> list[str]:
    """Aligned lines no wider than ``width``; measured / budget in every NFR cell.

    When the node ids do not fit, the directory they all share moves into the header
    (``test (in resiliency_tests/)``) and what is left is shortened in the middle. Below
    :data:`MIN_TEST_WIDTH` the experiments are stacked (the node id, then the verdict and
    figures indented beneath).
    """
    rows = [row(e) for e in _ordered(entries)]
    widths = [max(len(r[i]) for r in [HEADERS, *rows]) for i in range(len(HEADERS))]
    fixed = sum(widths[1:]) + len(GAP) * (len(HEADERS) - 1)
    room = width - fixed
    if room < MIN_TEST_WIDTH:
        return _stacked(rows, width)
    header = HEADERS[0]
    if widths[0] > room:
        prefix = common_dir([r[0] for r in rows])
        if prefix:
            header = f"test (in {prefix})"
            rows = [(r[0][len(prefix) :], *r[1:]) for r in rows]
    test_width = min(max(len(header), *(len(r[0]) for r in rows)), room)
    widths[0] = test_width
    shown = [(shorten(header, test_width), *HEADERS[1:])] + [(shorten(r[0], test_width), *r[1:]) for r in rows]
    lines = [GAP.join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in shown]
    lines.insert(1, GAP.join("-" * w for w in widths))
    return lines


def _stacked(rows: list[tuple[str, ...]], width: int) -> list[str]:
    """Two lines or more per experiment: the node id, then its verdict and figures indented."""
    lines = []
    for r in rows:
        lines.append(shorten(r[0], width))
        items = [f"{name} {cell}" for name, cell in zip(HEADERS[1:5], r[1:5], strict=True) if cell != "-"]
        lines += _flow([r[5], *items], width, STACK_INDENT)
    return lines


def _flow(items: list[str], width: int, indent: str, sep: str = " · ", hang: str = "") -> list[str]:
    """Join ``items`` with ``sep`` into lines of at most ``width``, breaking only between items.

    Lines after the first are indented by ``hang`` more; an item longer than a line is wrapped
    at its spaces.
    """
    lines: list[str] = []
    current = ""
    for item in items:
        prefix = indent if not lines else indent + hang
        candidate = f"{current}{sep}{item}" if current else item
        if current and len(prefix) + len(candidate) > width:
            lines.append(prefix + current)
            prefix, candidate = indent + hang, item
        current = candidate
        if len(prefix) + len(current) > width:
            parts = textwrap.wrap(current, width=max(width - len(indent + hang), 20)) or [""]
            *full, current = parts
            for part in full:
                lines.append((indent if not lines else indent + hang) + part)
    if current:
        lines.append((indent if not lines else indent + hang) + current)
    return lines


def _worst(entry: dict[str, Any], key: str) -> float | None:
    values = [e.get(key) for e in entry.get("measurement", {}).get("episodes", [])]
    numbers = [v for v in values if v is not None]
    return max(numbers) if numbers else None


def details(entry: dict[str, Any]) -> list[list[str]]:
    """Every figure of one experiment (``-v``): one list of items per line of thought."""
    s, b = entry["summary"], entry["budget"]
    out = []
    if entry.get("verdict", {}).get("line"):
        out.append([f"{verdict_label(entry)}: {entry['verdict']['line']}"])
    out += [[f"error: {error}"] for error in entry.get("errors") or []]
    if entry.get("aborted"):
        out.append([f"aborted: {entry['aborted']}"])
    recovery = [f"RTO {_rto(s, b['rto'])}" if s.get("rto") is not None else f"RTO {s.get('rto_status')}"]
    for label, key in (("detection", "detection_delay"), ("outage", "outage"), ("longest gap", "longest_gap")):
        value = _worst(entry, key)
        if value is not None:
            recovery.append(f"{label} {format_duration(value)}")
    recovery.append(f"{s.get('failed_operations', 0)} failed of {s.get('operations', 0)} operations")
    out.append(recovery)
    figures = [f"RPO {_rpo(s, b)}", f"error rate {_rate(s['error_rate'], b['error_rate'])}"]
    figures = [f for f in figures if not f.endswith(" -")]
    p99 = f"p99 {_seconds(s['p99'], b['p99'])}"
    if s.get("baseline_p99") is not None:
        p99 += f" (baseline {format_duration(s['baseline_p99'])})"
    figures.append(p99)
    if s.get("alert_delay") is not None or b.get("alert_within") is not None:
        figures.append(f"alert {_seconds(s.get('alert_delay'), b.get('alert_within'))}")
    out.append(figures)
    if s.get("evidence_note"):
        out.append([f"evidence: {s['evidence_note']}"])
    return out


def render(
    experiments: list[dict[str, Any]],
    *,
    width: int = DEFAULT_WIDTH,
    verbose: bool = False,
    unmarked: list[dict[str, Any]] | None = None,
) -> list[str]:
    """The whole summary below its separator: the table, then (``verbose``) details.

    ``unmarked`` are tests that used the ``experiment`` fixture without the ``resiliency``
    marker: measured, never judged. They are one line by default and listed with ``-v``.
    """
    unmarked = unmarked or []
    lines = table(experiments, width) if experiments else []
    if verbose:
        for entry in _ordered(experiments):
            lines.append("")
            lines += textwrap.wrap(entry["nodeid"], width=width) or [""]
            for items in details(entry):
                lines += _flow(items, width, "    ", sep=", ", hang="  ")
    if unmarked:
        if lines:
            lines.append("")
        noun = "test" if len(unmarked) == 1 else "tests"
        lines.append(
            f"{len(unmarked)} {noun} measured without a resiliency marker (no budget, not judged)"
            + (":" if verbose else "; -v lists them")
        )
        if verbose:
            for entry in _ordered(unmarked):
                rto = rto_text(entry["summary"]) or entry["summary"].get("rto_status") or "-"
                one = f"    {entry['nodeid']}  RTO {rto}"
                lines += [one] if len(one) <= width else [f"    {entry['nodeid']}", f"        RTO {rto}"]
    return lines
