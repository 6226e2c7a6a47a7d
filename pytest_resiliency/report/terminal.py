"""The end-of-run table: one row per resiliency test with measured vs budget."""

from __future__ import annotations

from typing import Any

from ..budget import format_duration

__all__ = ["format_duration", "row", "table", "verdict_label"]


HEADERS = ("test", "RTO", "RPO", "error rate", "p99", "verdict")


def _seconds(measured: float | None, budget: float | None, status: str | None = None) -> str:
    text = format_duration(measured) if measured is not None else (status or "-")
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
    s, b = entry["summary"], entry["budget"]
    status = None if s["rto_status"] == "recovered" else s["rto_status"]
    return (
        entry["nodeid"],
        _seconds(s["rto"], b["rto"], status),
        _rpo(s, b),
        _rate(s["error_rate"], b["error_rate"]),
        _seconds(s["p99"], b["p99"]),
        verdict_label(entry),
    )


def table(entries: list[dict[str, Any]]) -> list[str]:
    """Aligned text lines; measured / budget in every NFR cell."""
    rows = [HEADERS] + [row(e) for e in sorted(entries, key=lambda e: e["nodeid"])]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines
