"""The Markdown scorecard (``--resiliency-summary-md PATH``), shaped for a CI job summary.

GitHub renders ``$GITHUB_STEP_SUMMARY`` as Markdown and expects every step to *append*
to it, so :func:`write` appends when the file exists. One headline, one table row per
experiment (measured / budget in every cell), then every breach line in full.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .terminal import format_duration, row, verdict_label

ICONS = {"pass": "✅", "breach": "❌", "aborted": "⛔", "error": "⚠️"}
HEADERS = ("", "Test", "RTO / budget", "RPO / budget", "Error rate / budget", "p99 / budget", "Verdict")


def _cell(text: str) -> str:
    """A table cell: pipes escaped and newlines flattened, so a node id cannot break the table."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()


def _code(text: str) -> str:
    return "`" + _cell(text).replace("`", "'") + "`"


def headline(entries: list[dict[str, Any]]) -> str:
    expected = [e for e in entries if e.get("xfail")]
    counts = {k: sum(1 for e in entries if e["outcome"] == k and not e.get("xfail")) for k in ICONS}
    parts = [f"**{len(entries)} experiment{'s' if len(entries) != 1 else ''}**"]
    parts += [f"{ICONS[k]} {n} {'passed' if k == 'pass' else k}" for k, n in counts.items() if n]
    if expected:
        parts.append(f"{len(expected)} expected to fail (xfail)")
    rtos = [e["summary"]["rto"] for e in entries if e["summary"]["rto"] is not None]
    if rtos:
        parts.append(f"worst RTO {format_duration(max(rtos))}")
    unrecovered = sum(1 for e in entries if e["summary"]["rto_status"] == "not recovered")
    if unrecovered:
        parts.append(f"{unrecovered} not recovered")
    lost = [e["summary"]["lost_writes"] for e in entries if e["summary"]["lost_writes"] is not None]
    if lost:
        parts.append(f"{sum(lost)} lost write{'s' if sum(lost) != 1 else ''}")
    return " · ".join(parts)


def render(entries: list[dict[str, Any]], title: str = "Resiliency scorecard", unmarked: int = 0) -> str:
    """``unmarked``: how many tests were measured without the ``resiliency`` marker (not listed)."""
    ordered = sorted(entries, key=lambda e: e["nodeid"])
    lines = [f"## {title}", "", headline(ordered), ""]
    if unmarked:
        noun = "test" if unmarked == 1 else "tests"
        lines += [
            f"_{unmarked} {noun} measured without a resiliency marker (no budget, not judged) are not listed._",
            "",
        ]
    if not ordered:
        return "\n".join([*lines, "No resiliency experiment ran.", ""])
    lines.append("| " + " | ".join(HEADERS) + " |")
    lines.append("|" + "|".join(":-:" if not h else "---" for h in HEADERS) + "|")
    for entry in ordered:
        _, rto, rpo, rate, p99, _ = row(entry)
        cells = (
            ICONS.get(entry["outcome"], ""),
            _code(entry["nodeid"]),
            _cell(rto),
            _cell(rpo),
            _cell(rate),
            _cell(p99),
            f"**{_cell(verdict_label(entry))}**",
        )
        lines.append("| " + " | ".join(cells) + " |")
    problems = [e for e in ordered if e["verdict"]["line"] or e.get("errors") or e.get("aborted")]
    if problems:
        lines += ["", "<details open><summary>Breaches and errors</summary>", ""]
        for entry in problems:
            why = entry["verdict"]["line"] or "; ".join(entry.get("errors") or []) or f"aborted: {entry['aborted']}"
            lines.append(f"- {_code(entry['nodeid'])}: {_cell(why)}")
        lines += ["", "</details>"]
    notes = [e for e in ordered if e["summary"].get("evidence_note")]
    if notes:
        lines += ["", "<details><summary>Evidence notes</summary>", ""]
        lines += [f"- {_code(e['nodeid'])}: {_cell(e['summary']['evidence_note'])}" for e in notes]
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def write(path: Path, entries: list[dict[str, Any]], unmarked: int = 0) -> None:
    """Append the scorecard (a blank line first when the file already has content)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render(entries, unmarked=unmarked)
    if path.exists() and path.stat().st_size:
        text = "\n" + text
    with path.open("a", encoding="utf-8") as out:
        out.write(text)
