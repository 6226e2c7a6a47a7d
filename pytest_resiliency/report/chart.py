"""The timeline chart: one inline SVG per test, drawn from the payload alone.

What a reader must see at a glance: when the fault was active (shaded, labelled), that
requests failed (red bars) and for how long, where recovery was declared against the RTO
budget, what latency did (p50/p99), and which acknowledged writes were lost. The x axis
is seconds from the first injection, the same ``+1.52s`` the verdict line uses. The size
is bounded by the series (at most ``series.MAX_BUCKETS`` bars), never by the evidence.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from .terminal import format_duration

WIDTH, HEIGHT = 960, 372
LEFT, RIGHT = 62, 18
# Labels live above the plot, one row each, so bars never hide them.
ROW_TITLE, ROW_FAULT, ROW_BUDGET, ROW_FIRST_FAIL, ROW_RTO = 20, 40, 54, 68, 82
TOP = 92
BARS_H = 150
GAP = 30  # lost-write marks and their label sit in the gap between the panels
LAT_H = 62
AXIS_Y = TOP + BARS_H + GAP + LAT_H

OK_COLOUR, FAIL_COLOUR = "#43a047", "#e53935"
P50_COLOUR, P99_COLOUR = "#1e88e5", "#fb8c00"
FAULT_FILL, FAULT_EDGE = "#ffcdd2", "#c62828"
RECOVERED_COLOUR, LOST_COLOUR, BUDGET_COLOUR = "#2e7d32", "#8e24aa", "#6d4c41"
FONT = "font-family:Helvetica,Arial,sans-serif"


def _nice(value: float) -> float:
    """The round number at or above ``value`` (1, 2, 2.5, 5 x 10^n) for an axis maximum."""
    if value <= 0:
        return 1.0
    scale: float = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0):
        if step * scale >= value * (1 - 1e-9):
            return step * scale
    return 10.0 * scale


def _tick_step(span: float, target: int = 10) -> float:
    return _nice(span / target) if span > 0 else 1.0


def _seconds(value: float) -> str:
    return f"{value:+.0f}s" if abs(value) >= 10 or value == int(value) else f"{value:+.1f}s"


class _Svg:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, text: str) -> None:
        self.parts.append(text)

    def text(self, x: float, y: float, body: str, *, size: int = 11, anchor: str = "start", **style: str) -> None:
        extra = "".join(f' {k.replace("_", "-")}="{escape(v)}"' for k, v in style.items())
        self.add(
            f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>{escape(body)}</text>'
        )

    def line(self, x1: float, y1: float, x2: float, y2: float, colour: str, width: float = 1, dash: str = "") -> None:
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        self.add(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" '
            f'stroke-width="{width}"{dashed}/>'
        )

    def rect(self, x: float, y: float, w: float, h: float, fill: str, extra: str = "") -> None:
        self.add(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" fill="{fill}"{extra}/>'
        )


def _label_x(x: float, text: str, size: int = 11) -> tuple[float, str]:
    """Keep a label inside the plot: anchor it at its line, flipped left near the right edge."""
    room = len(text) * size * 0.55
    if x + 4 + room > WIDTH - RIGHT:
        return x - 4, "end"
    return x + 4, "start"


def render(payload: dict[str, Any]) -> str:
    """The chart of one test's payload as an ``<svg>`` element (a string)."""
    series = payload.get("series") or {}
    svg = _Svg()
    svg.add(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="resiliency-chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" style="max-width:{WIDTH}px;{FONT};background:#fff" role="img" '
        f'aria-label="{escape(_aria(payload))}">'
    )
    svg.add(f"<title>{escape(_aria(payload))}</title>")
    _title(svg, payload)
    buckets = int(series.get("buckets") or 0)
    if not buckets or not (sum(series.get("ok", [])) + sum(series.get("fail", []))):
        svg.text(
            WIDTH / 2, TOP + BARS_H / 2, "no operations were observed (no load, no monitor)", size=14, anchor="middle"
        )
        svg.add("</svg>")
        return "".join(svg.parts)
    t0 = float(series["t0"])
    width = float(series["bucket"])
    episodes = payload.get("measurement", {}).get("episodes") or []
    origin = episodes[0]["t_inject"] if episodes else t0  # x axis: seconds from the first injection
    span = buckets * width
    plot_w = WIDTH - LEFT - RIGHT

    def x_of(t: float) -> float:
        return LEFT + max(0.0, min(span, t - t0)) / span * plot_w

    _faults(svg, payload, x_of, t0 + span)
    _bars(svg, series, plot_w)
    _latency(svg, series, plot_w)
    _axis(svg, t0, span, origin, x_of, width)
    _episodes(svg, payload, episodes, x_of)
    _lost(svg, series, t0, x_of)
    _marks(svg, payload, x_of)
    _legend(svg)
    svg.add("</svg>")
    return "".join(svg.parts)


def _aria(payload: dict[str, Any]) -> str:
    line = payload.get("verdict", {}).get("line") or ""
    return f"resiliency timeline of {payload.get('nodeid', '')}: {payload.get('outcome', '').upper()} {line}".strip()


def _title(svg: _Svg, payload: dict[str, Any]) -> None:
    outcome = str(payload.get("outcome", ""))
    colour = {"pass": RECOVERED_COLOUR, "breach": FAIL_COLOUR}.get(outcome, "#616161")
    svg.rect(LEFT, ROW_TITLE - 15, 74, 20, colour, ' rx="3"')
    svg.text(LEFT + 37, ROW_TITLE, outcome.upper() or "?", size=12, anchor="middle", fill="#fff", font_weight="bold")
    line = payload.get("verdict", {}).get("line") or _headline(payload)
    if len(line) > 125:
        line = line[:122] + "..."
    svg.text(LEFT + 82, ROW_TITLE, line, size=12, fill="#212121")


def _headline(payload: dict[str, Any]) -> str:
    s = payload.get("summary", {})
    if s.get("rto") is not None:
        return f"recovered: RTO {format_duration(s['rto'])} (±{_fmt(s.get('rto_uncertainty'))})"
    return str(s.get("rto_status") or "")


def _fmt(value: Any) -> str:
    return format_duration(value) if isinstance(value, (int, float)) else "-"


def _faults(svg: _Svg, payload: dict[str, Any], x_of: Any, end: float) -> None:
    """Shade every fault's active window across both panels and name it above the plot."""
    for row, fault in enumerate(payload.get("faults") or []):
        start = fault["injected_at"]
        stop = fault["reverted_at"] if fault.get("reverted_at") is not None else end
        x1, x2 = x_of(start), x_of(stop)
        band = ' fill-opacity="0.55" class="fault-window"'
        svg.rect(x1, ROW_FAULT + 3, max(x2 - x1, 1.5), AXIS_Y - ROW_FAULT - 3, FAULT_FILL, band)
        svg.line(x1, ROW_FAULT + 3, x1, AXIS_Y, FAULT_EDGE, 1)
        svg.line(x2, TOP, x2, AXIS_Y, FAULT_EDGE, 1, "2,2")
        held = format_duration(max(stop - start, 0.0))
        label = f"fault: {fault.get('name', '?')} ({held})"
        if fault.get("reverted_at") is None:
            label += " never reverted"
        lx, anchor = _label_x(x1, label)
        svg.text(lx, ROW_FAULT - 8 * (row % 2), label, fill=FAULT_EDGE, anchor=anchor, font_weight="bold")


def _bars(svg: _Svg, series: dict[str, Any], plot_w: float) -> None:
    ok, fail = series["ok"], series["fail"]
    peak = _nice(max((a + b for a, b in zip(ok, fail, strict=True)), default=1))
    bar_w = plot_w / len(ok)
    gap = 1.0 if bar_w > 4 else 0.0
    for i, (good, bad) in enumerate(zip(ok, fail, strict=True)):
        x = LEFT + i * bar_w
        h_ok = good / peak * BARS_H
        h_fail = bad / peak * BARS_H
        base = TOP + BARS_H
        if good:
            svg.rect(x, base - h_ok, bar_w - gap, h_ok, OK_COLOUR)
        if bad:
            svg.rect(x, base - h_ok - h_fail, bar_w - gap, h_fail, FAIL_COLOUR, ' class="failed-bucket"')
    svg.line(LEFT, TOP, LEFT, TOP + BARS_H, "#9e9e9e")
    for frac in (0.0, 0.5, 1.0):
        y = TOP + BARS_H - frac * BARS_H
        svg.line(LEFT - 4, y, LEFT, y, "#9e9e9e")
        svg.text(LEFT - 6, y + 4, f"{peak * frac:g}", size=10, anchor="end", fill="#616161")
    svg.text(14, TOP + BARS_H / 2, f"requests / {format_duration(series['bucket'])}", size=10, anchor="middle",
             fill="#616161", transform=f"rotate(-90 14 {TOP + BARS_H / 2:.1f})")  # fmt: skip


def _latency(svg: _Svg, series: dict[str, Any], plot_w: float) -> None:
    top = TOP + BARS_H + GAP
    values = [v for v in series["p99"] if v is not None]
    if not values:
        svg.text(LEFT + 4, top + LAT_H / 2, "latency: no successful operation", size=10, fill="#616161")
        return
    peak = _nice(max(values))
    bar_w = plot_w / len(series["p99"])
    for key, colour in (("p99", P99_COLOUR), ("p50", P50_COLOUR)):
        runs: list[list[str]] = [[]]
        for i, v in enumerate(series[key]):
            if v is None:  # a bucket with no success: break the line, do not draw a false zero
                runs.append([])
                continue
            runs[-1].append(f"{LEFT + (i + 0.5) * bar_w:.1f},{top + LAT_H - v / peak * LAT_H:.1f}")
        for run in runs:
            if len(run) == 1:
                x, y = run[0].split(",")
                svg.add(f'<circle cx="{x}" cy="{y}" r="1.8" fill="{colour}"/>')
            elif run:
                svg.add(f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
    svg.line(LEFT, top, LEFT, top + LAT_H, "#9e9e9e")
    svg.text(LEFT - 6, top + 8, format_duration(peak), size=10, anchor="end", fill="#616161")
    svg.text(LEFT - 6, top + LAT_H, "0", size=10, anchor="end", fill="#616161")
    svg.text(14, top + LAT_H / 2, "latency", size=10, anchor="middle", fill="#616161",
             transform=f"rotate(-90 14 {top + LAT_H / 2:.1f})")  # fmt: skip


def _axis(svg: _Svg, t0: float, span: float, origin: float, x_of: Any, width: float) -> None:
    svg.line(LEFT, AXIS_Y, WIDTH - RIGHT, AXIS_Y, "#9e9e9e")
    step = _tick_step(span)
    first = math.ceil((t0 - origin) / step) * step
    tick = first
    for _ in range(40):  # bounded: _tick_step aims at ~10 ticks
        if tick > t0 + span - origin + 1e-9:
            break
        x = x_of(origin + tick)
        svg.line(x, AXIS_Y, x, AXIS_Y + 4, "#9e9e9e")
        svg.text(x, AXIS_Y + 15, _seconds(round(tick, 6)), size=10, anchor="middle", fill="#616161")
        tick += step
    svg.text(WIDTH - RIGHT, AXIS_Y + 28, f"time from first injection ({format_duration(width)} buckets)", size=10,
             anchor="end", fill="#616161")  # fmt: skip


def _episodes(svg: _Svg, payload: dict[str, Any], episodes: list[dict[str, Any]], x_of: Any) -> None:
    """Inject, first failure, recovery (or its absence) and the RTO bracket against the budget."""
    budget = payload.get("budget", {}).get("rto")
    for ep in episodes:
        t_inject = ep["t_inject"]
        xi = x_of(t_inject)
        svg.line(xi, ROW_FAULT + 3, xi, AXIS_Y, "#212121", 1.5)
        if ep.get("t_first_fail") is not None:
            xf = x_of(ep["t_first_fail"])
            svg.line(xf, ROW_FIRST_FAIL - 9, xf, TOP + BARS_H, FAIL_COLOUR, 1.2, "4,2")
            label = f"first failure +{format_duration(ep['t_first_fail'] - t_inject)}"
            lx, anchor = _label_x(xf, label, 10)
            svg.text(lx, ROW_FIRST_FAIL, label, size=10, anchor=anchor, fill=FAIL_COLOUR)
        if budget is not None:
            xb = x_of(t_inject + budget)
            svg.line(xb, ROW_BUDGET - 9, xb, AXIS_Y, BUDGET_COLOUR, 1.2, "6,3")
            label = f"RTO budget {format_duration(budget)}"
            lx, anchor = _label_x(xb, label, 10)
            svg.text(lx, ROW_BUDGET, label, size=10, anchor=anchor, fill=BUDGET_COLOUR)
        y = ROW_RTO + 4  # the bracket runs just under its label
        if ep.get("t_recovered") is not None:
            xr = x_of(ep["t_recovered"])
            if ep.get("recovery_from") is not None:  # the bracket: recovery lies somewhere in it
                xl = min(x_of(ep["recovery_from"]), xr)
                svg.rect(xl, ROW_RTO + 8, max(xr - xl, 1.5), AXIS_Y - ROW_RTO - 8, RECOVERED_COLOUR,
                         ' fill-opacity="0.18" class="recovery-bracket"')  # fmt: skip
            svg.line(xr, y, xr, AXIS_Y, RECOVERED_COLOUR, 2)
            breached = budget is not None and (ep.get("rto") or 0) > budget
            colour = FAIL_COLOUR if breached else RECOVERED_COLOUR
            svg.line(xi, y, xr, y, colour, 2)
            svg.add(f'<path d="M{xr:.1f},{y} l-6,-4 v8 z" fill="{colour}"/>')
            rto = f"RTO {format_duration(ep['rto'])} (±{_fmt(ep.get('uncertainty'))})"
            rto += f" > budget {format_duration(budget)}" if breached else ""
            lx, anchor = _label_x(xr, f"recovered, {rto}")
            svg.text(lx, ROW_RTO, f"recovered, {rto}", anchor=anchor, fill=colour, font_weight="bold")
        elif ep.get("status") == "not recovered":
            xe = WIDTH - RIGHT
            svg.line(xi, y, xe, y, FAIL_COLOUR, 2, "6,3")
            svg.text(xe - 2, y - 4, f"not recovered within {format_duration(ep['timeout'])}", anchor="end",
                     fill=FAIL_COLOUR, font_weight="bold")  # fmt: skip
        elif ep.get("status") == "no evidence":
            svg.text(xi + 4, y + 4, "no evidence after the fault", fill="#616161")


def _lost(svg: _Svg, series: dict[str, Any], t0: float, x_of: Any) -> None:
    lost = series.get("lost_writes") or []
    base = TOP + BARS_H + 3
    for offset in lost:
        x = x_of(t0 + offset)
        svg.add(f'<path class="lost-write" d="M{x:.1f},{base} l-4,8 h8 z" fill="{LOST_COLOUR}"/>')
    total = series.get("lost_total")
    if total:
        shown = f" ({len(lost)} shown)" if len(lost) < total else ""
        x = x_of(t0 + lost[0]) if lost else LEFT
        lx, anchor = _label_x(x + 4, f"{total} lost writes{shown}", 10)
        svg.text(lx, base + 19, f"{total} lost write{'s' if total != 1 else ''}{shown}", size=10, anchor=anchor,
                 fill=LOST_COLOUR, font_weight="bold")  # fmt: skip


def _marks(svg: _Svg, payload: dict[str, Any], x_of: Any) -> None:
    for mark in payload.get("marks") or []:
        kind = mark.get("kind")
        if kind not in ("alert", "aborted", "fault-expired", "mark"):
            continue
        x = x_of(mark["at"])
        colour = {"alert": P50_COLOUR, "aborted": "#000", "fault-expired": FAULT_EDGE, "mark": "#6a3d9a"}[kind]
        svg.add(f'<path d="M{x:.1f},{ROW_BUDGET - 9} l5,5 l-5,5 l-5,-5 z" fill="{colour}"/>')
        svg.line(x, ROW_BUDGET + 1, x, AXIS_Y, colour, 1, "1,2")
        label = f"{kind}: {mark.get('name', '')}"[:60]
        lx, anchor = _label_x(x + 3, label, 10)
        svg.text(lx, ROW_BUDGET, label, size=10, anchor=anchor, fill=colour)


def _legend(svg: _Svg) -> None:
    items = (
        ("rect", OK_COLOUR, "ok"),
        ("rect", FAIL_COLOUR, "failed"),
        ("line", P50_COLOUR, "p50"),
        ("line", P99_COLOUR, "p99"),
        ("rect", FAULT_FILL, "fault active"),
        ("line", RECOVERED_COLOUR, "recovered"),
        ("line", BUDGET_COLOUR, "RTO budget"),
        ("tri", LOST_COLOUR, "lost write"),
    )
    x, y = LEFT, AXIS_Y + 28
    for shape, colour, label in items:
        if shape == "rect":
            svg.rect(x, y - 9, 10, 10, colour)
        elif shape == "line":
            svg.line(x, y - 4, x + 10, y - 4, colour, 2)
        else:
            svg.add(f'<path d="M{x + 5},{y - 9} l-5,9 h10 z" fill="{colour}"/>')
        svg.text(x + 14, y, label, size=10, fill="#424242")
        x += 24 + len(label) * 6
