"""The trend page (``pytest-resiliency trend J1.json J2.json ... -o trend.html``).

One self-contained HTML file (inline CSS, inline SVG, a few lines of script for the filter;
nothing fetched) with, per test, its RTO (bar = the uncertainty, the judged upper end
marked), lost writes and p99 across the runs, budgets drawn as dashed lines, and each
point coloured by that run's verdict. The runs are the journals in the order given
(oldest first), or sorted by their ``created`` time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from ..budget import format_duration
from .compare import INF, interval, load, uncertainty

COLOURS = {"pass": "#2e7d32", "breach": "#c62828", "aborted": "#424242", "error": "#ef6c00"}
MISSING = "#9e9e9e"
W, H = 340, 190
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 26, 34


@dataclass(frozen=True)
class Run:
    label: str
    created: str
    tests: dict[str, dict[str, Any]]


def runs_from(paths: list[Path], sort_by_created: bool = False) -> list[Run]:
    runs = []
    for path in paths:
        document = load(path)
        created = str(document.get("created") or "")
        runs.append(Run(path.name, created, {t["nodeid"]: t for t in document["tests"]}))
    if sort_by_created:
        runs.sort(key=lambda r: r.created)
    return runs


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    kind: str  # duration or count
    budget_key: str


CHARTS = (
    Chart("rto", "RTO", "duration", "rto"),
    Chart("lost_writes", "lost writes", "count", "rpo_writes"),
    Chart("p99", "p99 latency", "duration", "p99"),
)


def _fmt(kind: str, value: float) -> str:
    if kind == "count":
        return str(round(value))
    return format_duration(value)


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0):
        top = step * 10.0**exponent
        if top >= value:
            return top
    return 10.0 ** (exponent + 1)


def chart_svg(chart: Chart, runs: list[Run], nodeid: str) -> str:
    """One small chart: a point per run (bar = the uncertainty), the budget dashed, gaps where unmeasured."""
    points: list[tuple[int, tuple[float, float] | None, str]] = []
    budget_by_run: list[tuple[int, float]] = []
    for index, run in enumerate(runs):
        entry = run.tests.get(nodeid)
        if entry is None:
            points.append((index, None, "absent"))
            continue
        budget = (entry.get("budget") or {}).get(chart.budget_key)
        if isinstance(budget, (int, float)) and not isinstance(budget, bool):
            budget_by_run.append((index, float(budget)))
        points.append((index, interval(entry, chart.key), str(entry.get("outcome"))))
    finite = [b[1] for _, b, _ in points if b is not None and b[1] != INF]
    top = _nice_max(max([*finite, *(b for _, b in budget_by_run), 0.0]) * 1.1)
    if chart.kind == "count":
        top = max(4.0, float(math.ceil(top / 4) * 4))  # whole-number ticks
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    n = max(len(runs), 1)

    def x(i: int) -> float:
        return LEFT + (plot_w * (i + 0.5) / n)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - min(v, top) / top)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="trend-chart" data-figure="{chart.key}" '
        f'width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" '
        f'aria-label="{escape(chart.title)} of {escape(nodeid)} across {len(runs)} runs">',
        f'<text x="{LEFT}" y="16" class="t">{escape(chart.title)}</text>',
    ]
    for k in range(5):
        v = top * k / 4
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>')
        out.append(f'<text x="{LEFT - 4}" y="{y(v) + 4:.1f}" class="ax" text-anchor="end">{_fmt(chart.kind, v)}</text>')
    for i in range(len(runs)):
        out.append(
            f'<text x="{x(i):.1f}" y="{H - BOTTOM + 14}" class="ax" text-anchor="middle">#{i + 1}</text>'
            if n <= 20 or i % math.ceil(n / 20) == 0
            else ""
        )
    half = plot_w / (2 * n)
    last_of: dict[float, int] = {}
    for i, budget in budget_by_run:
        last_of[budget] = i
        out.append(
            f'<line x1="{x(i) - half:.1f}" x2="{x(i) + half:.1f}" y1="{y(budget):.1f}" y2="{y(budget):.1f}" '
            f'class="budget"><title>#{i + 1} budget {_fmt(chart.kind, budget)}</title></line>'
        )
    for budget, i in last_of.items():  # budgets may change between runs: a step line, each labelled once
        out.append(
            f'<text x="{x(i) + half:.1f}" y="{y(budget) - 3:.1f}" class="ax budget-label" text-anchor="end">'
            f"budget {_fmt(chart.kind, budget)}</text>"
        )
    line: list[str] = []
    for i, bounds, _ in points:
        if bounds is None or bounds[1] == INF:
            if line:
                out.append(f'<polyline points="{" ".join(line)}" class="trend"/>')
            line = []
        else:
            line.append(f"{x(i):.1f},{y(bounds[1]):.1f}")
    if line:
        out.append(f'<polyline points="{" ".join(line)}" class="trend"/>')
    for i, bounds, outcome in points:
        run = runs[i]
        label = f"#{i + 1} {run.label}" + (f" ({run.created})" if run.created else "")
        if bounds is None:
            reason = "not in this run" if outcome == "absent" else "not measured"
            out.append(
                f'<text x="{x(i):.1f}" y="{TOP + plot_h - 4}" class="ax na" text-anchor="middle">'
                f"&#8211;<title>{escape(label)}: {reason}</title></text>"
            )
            continue
        colour = COLOURS.get(outcome, MISSING)
        if bounds[1] == INF:
            out.append(
                f'<text x="{x(i):.1f}" y="{TOP + 10}" class="unrecovered" text-anchor="middle" fill="{colour}">'
                f"✕<title>{escape(label)}: not recovered ({escape(outcome)})</title></text>"
            )
            continue
        low, high = bounds
        tip = f"{escape(label)}: {_fmt(chart.kind, high)}"
        if high > low:
            tip += f" (uncertainty {format_duration(high - low)}: {_fmt(chart.kind, low)} to {_fmt(chart.kind, high)})"
            out.append(
                f'<line x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{y(low):.1f}" y2="{y(high):.1f}" '
                f'class="uncertainty" stroke="{colour}"/>'
            )
        out.append(
            f'<circle cx="{x(i):.1f}" cy="{y(high):.1f}" r="4" fill="{colour}" class="point" '
            f'data-outcome="{escape(outcome)}"><title>{tip} — {escape(outcome.upper())}</title></circle>'
        )
    if all(bounds is None for _, bounds, _ in points):
        note = "not verified in any run" if chart.key == "lost_writes" else "not measured in any run"
        out.append(
            f'<text x="{LEFT + plot_w / 2:.1f}" y="{TOP + plot_h / 2:.1f}" class="ax" '
            f'text-anchor="middle">{note}</text>'
        )
    out.append("</svg>")
    return "".join(out)


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:20px;color:#212121}
h1{font-size:20px;margin:0 0 6px 0}h2{font-size:14px;margin:0 0 6px 0;font-family:monospace;word-break:break-all}
table.runs,table.overview{border-collapse:collapse;font-size:12px;margin:8px 0 16px 0}
table.runs td,table.runs th,table.overview td,table.overview th{border:1px solid #ddd;padding:2px 8px;text-align:left}
th{background:#f5f5f5}
section.test{border:1px solid #e0e0e0;border-radius:6px;padding:10px;margin:0 0 14px 0}
.charts{display:flex;flex-wrap:wrap;gap:8px}
svg.trend-chart{background:#fff;border:1px solid #f0f0f0}
svg .t{font-size:12px;font-weight:bold}svg .ax{font-size:10px;fill:#616161}
svg .grid{stroke:#eeeeee}svg .budget{stroke:#c62828;stroke-dasharray:5 4;stroke-width:1.5}
svg .budget-label{fill:#c62828}svg .trend{fill:none;stroke:#90a4ae;stroke-width:1.5}
svg .uncertainty{stroke-width:6;stroke-opacity:.35}svg .unrecovered{font-size:14px;font-weight:bold}
.pass{color:#2e7d32;font-weight:bold}.breach{color:#c62828;font-weight:bold}
.error{color:#ef6c00;font-weight:bold}.aborted{color:#424242;font-weight:bold}
#filter{font-size:13px;padding:3px 6px;width:320px;margin-bottom:10px}
.legend{font-size:12px;color:#616161;margin-bottom:10px}
"""

SCRIPT = """
(function(){
  var box=document.getElementById('filter'), sections=document.querySelectorAll('section.test'),
      count=document.getElementById('shown');
  function apply(){
    var q=box.value.toLowerCase(), n=0;
    sections.forEach(function(s){var on=s.dataset.nodeid.toLowerCase().indexOf(q)>=0;
      s.style.display=on?'':'none'; if(on){n++;}});
    count.textContent=n+' of '+sections.length+' tests shown';
  }
  box.addEventListener('input',apply); apply();
})();
"""


def _latest(runs: list[Run], nodeid: str) -> dict[str, Any] | None:
    for run in reversed(runs):
        if nodeid in run.tests:
            return run.tests[nodeid]
    return None


def _rto_text(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "-"
    bounds = interval(entry, "rto")
    if bounds is None:
        return "-"
    if bounds[1] == INF:
        return "not recovered"
    text = format_duration(bounds[1])
    stated = uncertainty(entry)
    return text + (f" (±{format_duration(stated)})" if stated else "")


def render(runs: list[Run], title: str = "Resiliency trends") -> str:
    if not runs:
        raise ValueError("trend: no journals given")
    nodeids = sorted({nodeid for run in runs for nodeid in run.tests})
    run_rows = "".join(
        f"<tr><td>#{i + 1}</td><td>{escape(run.label)}</td><td>{escape(run.created)}</td>"
        f"<td>{len(run.tests)}</td><td>{sum(1 for t in run.tests.values() if t.get('outcome') == 'breach')}</td></tr>"
        for i, run in enumerate(runs)
    )
    overview, sections = [], []
    for nodeid in nodeids:
        latest = _latest(runs, nodeid)
        outcome = str((latest or {}).get("outcome", "-"))
        breaches = sum(1 for run in runs if run.tests.get(nodeid, {}).get("outcome") == "breach")
        present = sum(1 for run in runs if nodeid in run.tests)
        anchor = "t" + str(nodeids.index(nodeid))
        overview.append(
            f'<tr><td><a href="#{anchor}">{escape(nodeid)}</a></td><td>{_rto_text(latest)}</td>'
            f'<td class="{escape(outcome)}">{escape(outcome.upper())}</td><td>{breaches} of {present}</td></tr>'
        )
        charts = "".join(chart_svg(chart, runs, nodeid) for chart in CHARTS)
        sections.append(
            f'<section class="test" id="{anchor}" data-nodeid="{escape(nodeid)}"><h2>{escape(nodeid)}</h2>'
            f'<div class="charts">{charts}</div></section>'
        )
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{STYLE}</style></head><body>'
        f"<h1>{escape(title)}</h1>"
        f'<div class="legend">{len(runs)} runs, {len(nodeids)} tests. Points: the judged value (the RTO is the '
        "upper end of its recovery bracket); the pale bar below a point is its uncertainty; dashed red: the "
        "budget; colour: the run's verdict (green pass, red breach, orange error, grey aborted); ✕ not "
        "recovered; &#8211; not measured or not in that run.</div>"
        '<table class="runs"><thead><tr><th>run</th><th>journal</th><th>created</th><th>tests</th>'
        f"<th>breaches</th></tr></thead><tbody>{run_rows}</tbody></table>"
        '<table class="overview"><thead><tr><th>test</th><th>latest RTO</th><th>latest verdict</th>'
        f"<th>breaches</th></tr></thead><tbody>{''.join(overview)}</tbody></table>"
        '<input id="filter" type="search" placeholder="filter tests by node id" aria-label="filter tests">'
        f' <span id="shown"></span>{"".join(sections)}<script>{SCRIPT}</script></body></html>\n'
    )


def write(paths: list[Path], output: Path, title: str = "Resiliency trends", sort_by_created: bool = False) -> int:
    """Write the page; returns the number of tests on it."""
    runs = runs_from(paths, sort_by_created)
    html = render(runs, title)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(output)
    return len({nodeid for run in runs for nodeid in run.tests})
