"""pytest-html integration: resiliency columns, the timeline chart and the NFR table.

Registered by the plugin only where reports are written (serial run or xdist controller)
and only when pytest-html is active; it reads nothing but the payload riding on each
report (``report.resiliency``), so it is identical serially and under ``-n``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from typing import Any

import pytest

from . import chart
from .terminal import format_duration, verdict_label

LOG_PREFIX = "logs:"
LOG_LINES = 60
COLUMNS = (("rto", "RTO"), ("rpo", "RPO"), ("verdict", "Verdict"))
VERDICT_COLOURS = {"PASS": "#2e7d32", "BREACH": "#c62828", "ABORTED": "#424242", "ERROR": "#ef6c00"}
NOT_RECOVERED_KEY = 10**9  # sorts an unrecovered RTO after every measured one

STYLE = """<style>
.resiliency{margin:6px 0 10px 0;max-width:980px}
.resiliency h4{margin:10px 0 4px 0;font-size:13px}
.resiliency table.rz{border-collapse:collapse;font-size:12px;margin:4px 0}
.resiliency table.rz th,.resiliency table.rz td{border:1px solid #ddd;padding:2px 8px;
  text-align:left;vertical-align:top}
.resiliency table.rz th{background:#f5f5f5}
.resiliency .rz-pass{color:#2e7d32;font-weight:bold}.resiliency .rz-breach{color:#c62828;font-weight:bold}
.resiliency pre.rz-log{max-height:300px;overflow:auto;background:#fafafa;border:1px solid #eee;
  padding:4px;font-size:11px}
</style>"""


def _sort_key(value: float) -> str:
    """pytest-html sorts the cell's inner HTML as a string: lead with a fixed-width number."""
    return f'<span hidden class="rz-sort">{max(value, -1.0) + 1:016.6f}</span>'


def rto_cell(payload: dict[str, Any] | None) -> str:
    if payload is None:
        return f'<td class="col-rto">{_sort_key(-1)}</td>'
    s, budget = payload["summary"], payload["budget"]["rto"]
    if s["rto"] is not None:
        key, text = s["rto"], format_duration(s["rto"])
        if s.get("rto_uncertainty"):
            text += f" (±{format_duration(s['rto_uncertainty'])})"
    elif s["rto_status"] == "no fault":
        key, text = -1.0, "no fault"
    else:
        key, text = NOT_RECOVERED_KEY, s["rto_status"]
    if budget is not None:
        text += f" / {format_duration(budget)}"
    return f'<td class="col-rto">{_sort_key(key)}{escape(text)}</td>'


def rpo_cell(payload: dict[str, Any] | None) -> str:
    if payload is None:
        return f'<td class="col-rpo">{_sort_key(-1)}</td>'
    s, b = payload["summary"], payload["budget"]
    if s["lost_writes"] is None:
        text = "not verified" if b["rpo"] is not None or b["rpo_writes"] is not None else "-"
        return f'<td class="col-rpo">{_sort_key(-1)}{escape(text)}</td>'
    rpo = s["rpo"] or 0.0
    text = f"{format_duration(rpo)} ({s['lost_writes']} lost)"
    if b["rpo"] is not None:
        text += f" / {format_duration(b['rpo'])}"
    # lost writes first, then the time: 3 lost writes over 0s sort after 0 lost over 0s
    return f'<td class="col-rpo">{_sort_key(s["lost_writes"] * 1000 + rpo)}{escape(text)}</td>'


def verdict_cell(payload: dict[str, Any] | None, xfail: bool = False) -> str:
    if payload is None:
        return '<td class="col-verdict"></td>'
    label = verdict_label({**payload, "xfail": xfail})
    colour = VERDICT_COLOURS.get(label.split()[0], "#000")
    title = escape(payload["verdict"]["line"] or "all budgets held", quote=True)
    span = f'<span style="color:{colour};font-weight:bold" title="{title}">{escape(label)}</span>'
    return f'<td class="col-verdict">{span}</td>'


def recovery_bracket_text(payload: dict[str, Any]) -> str:
    """``recovered between +1.03s and +2.01s (±0.98s)`` for the worst episode, if it recovered."""
    s = payload["summary"]
    episodes = (payload.get("measurement") or {}).get("episodes") or []
    worst = next((e for e in episodes if e.get("rto") is not None and e.get("rto") == s["rto"]), None)
    if worst is None or worst.get("recovery_from") is None or worst.get("t_recovered") is None:
        return ""
    low = format_duration(worst["recovery_from"] - worst["t_inject"])
    high = format_duration(worst["t_recovered"] - worst["t_inject"])
    return f"recovered between +{low} and +{high} (±{format_duration(s.get('rto_uncertainty') or 0.0)})"


def nfr_rows(payload: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(NFR, budget, measured, result, note) for every NFR that is budgeted or measured."""
    s, b = payload["summary"], payload["budget"]
    breached = {br["nfr"]: br for br in payload["verdict"]["breaches"]}
    bracket = recovery_bracket_text(payload)
    ledger = (payload.get("measurement") or {}).get("ledger")

    def result(nfr: str, budget: Any) -> str:
        if nfr in breached:
            return "BREACH"
        return "pass" if budget is not None else "-"

    def dur(value: Any) -> str:
        return format_duration(value) if value is not None else "-"

    def rate(value: Any) -> str:
        return f"{value:.2%}" if value is not None else "-"

    rto = dur(s["rto"]) if s["rto"] is not None else str(s["rto_status"])
    rows = [("RTO", dur(b["rto"]), rto, result("rto", b["rto"]), bracket)]
    lost = "not verified" if s["lost_writes"] is None else f"{dur(s['rpo'] or 0.0)}"
    ledger_note = ""
    if ledger:
        ledger_note = (
            f"{ledger['acknowledged']} acknowledged, {ledger['lost']} lost, {ledger['indeterminate']} indeterminate "
            f"({ledger['recovered']} recovered), {ledger['unexpected']} unexpected; exact"
        )
    rows.append(("RPO (time)", dur(b["rpo"]), lost, result("rpo", b["rpo"]), ledger_note))
    writes = "not verified" if s["lost_writes"] is None else f"{s['lost_writes']} lost"
    budget_writes = "-" if b["rpo_writes"] is None else str(b["rpo_writes"])
    rows.append(("RPO (writes)", budget_writes, writes, result("rpo_writes", b["rpo_writes"]), ""))
    fw = (payload.get("measurement") or {}).get("fault_window") or {}
    ops = f"{fw.get('failed', 0)} of {fw.get('operations', 0)} failed in the fault window" if fw else ""
    rows.append(
        ("error rate", rate(b["error_rate"]), rate(s["error_rate"]), result("error_rate", b["error_rate"]), ops)
    )
    baseline = f"baseline p99 {dur(s['baseline_p99'])}" if s["baseline_p99"] is not None else ""
    rows.append(("p99 latency", dur(b["p99"]), dur(s["p99"]), result("p99", b["p99"]), baseline))
    if b["alert_within"] is not None or s["alert_delay"] is not None:
        rows.append(
            (
                "alert within",
                dur(b["alert_within"]),
                dur(s["alert_delay"]),
                result("alert_within", b["alert_within"]),
                "",
            )
        )
    return rows


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], cls: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            marker = ' class="rz-breach"' if cell == "BREACH" else ' class="rz-pass"' if cell == "pass" else ""
            cells.append(f"<td{marker}>{escape(str(cell))}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f'<table class="rz {cls}"><tr>{head}</tr>{"".join(body)}</table>'


def _offset(t: Any, origin: float | None) -> str:
    if t is None:
        return "-"
    if origin is None:
        return f"{t:.3f}"
    return f"{t - origin:+.3f}s"


def faults_table(payload: dict[str, Any]) -> str:
    faults = payload.get("faults") or []
    if not faults:
        return "<p>No fault was injected.</p>"
    origin = faults[0]["injected_at"] if faults else None
    rows = []
    for f in faults:
        params = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(f["params"].items()))
        held = (
            format_duration(f["reverted_at"] - f["injected_at"]) if f["reverted_at"] is not None else "never reverted"
        )
        rows.append(
            (
                f["name"],
                f["kind"],
                f["target"] or "-",
                params or "-",
                _offset(f["injected_at"], origin),
                _offset(f["reverted_at"], origin),
                held,
                f["error"] or "",
            )
        )
    return _table(
        ("fault", "kind", "target", "parameters", "injected", "reverted", "active for", "error"), rows, "rz-faults"
    )


def logs_html(payload: dict[str, Any]) -> str:
    """The tail of every ``logs:*`` attachment (already scrubbed and bounded in the payload)."""
    parts = []
    for key, value in sorted((payload.get("attachments") or {}).items()):
        if not key.startswith(LOG_PREFIX):
            continue
        text = (
            value if isinstance(value, str) else "\n".join(map(str, value)) if isinstance(value, list) else str(value)
        )
        lines = text.splitlines()
        tail = lines[-LOG_LINES:]
        cut = f" (last {len(tail)} of {len(lines)} lines)" if len(lines) > len(tail) else ""
        parts.append(
            f'<details class="rz-logs" open><summary>{escape(key)}{cut}</summary>'
            f'<pre class="rz-log">{escape(chr(10).join(tail))}</pre></details>'
        )
    return "".join(parts)


def section(payload: dict[str, Any]) -> str:
    """Everything a person needs to understand one experiment, as one HTML fragment."""
    parts = [STYLE, '<div class="resiliency">', chart.render(payload)]
    parts.append("<h4>NFR budget vs measured</h4>")
    parts.append(_table(("NFR", "budget", "measured", "result", "note"), nfr_rows(payload), "rz-nfr"))
    note = payload["summary"].get("evidence_note")
    if note:
        parts.append(f'<p class="rz-note"><b>Note:</b> {escape(note)}</p>')
    for error in payload.get("errors") or []:
        parts.append(f'<p class="rz-breach">{escape(error)}</p>')
    if payload.get("aborted"):
        parts.append(f'<p class="rz-breach">aborted: {escape(str(payload["aborted"]))}</p>')
    parts.append("<h4>Faults</h4>")
    parts.append(faults_table(payload))
    logs = logs_html(payload)
    if logs:
        parts.append("<h4>Service logs</h4>")
        parts.append(logs)
    parts.append("</div>")
    return "".join(parts)


class HtmlReport:
    """Registered by the plugin only when pytest-html is active."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        at = _insert_at(cells)
        for offset, (key, title) in enumerate(COLUMNS):
            cells.insert(at + offset, f'<th class="sortable" data-column-type="{key}">{title}</th>')

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        payload = getattr(report, "resiliency", None)
        at = _insert_at(cells)
        cells[at:at] = [rto_cell(payload), rpo_cell(payload), verdict_cell(payload, hasattr(report, "wasxfail"))]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Attach the chart before pytest-html (trylast) turns the report into a row.

        The extra is the dict ``pytest_html.extras.html()`` makes, built here so this
        module needs no import of pytest-html (it is untyped).
        """
        payload = getattr(report, "resiliency", None)
        if payload is None or report.when != "call":
            return
        extra = {"name": None, "format_type": "html", "content": section(payload), "mime_type": None, "extension": None}
        report.extras = [*getattr(report, "extras", []), extra]  # type: ignore[attr-defined]


def _insert_at(cells: list[str]) -> int:
    """Right after the duration column (header and rows alike); at the end if it is gone."""
    for i, cell in enumerate(cells):
        if 'data-column-type="duration"' in cell or 'class="col-duration"' in cell:
            return i + 1
    return len(cells)
