"""``pytest-resiliency trend``: the trend page across journals, rendered in headless Chromium.

The journals come from real runs of the suite in test_compare (an outage of a chosen
length, a chosen RTO budget); Chromium's ``--dump-dom`` shows the page after its script ran,
its console (stderr) any script error, and a screenshot is kept under ``reports/``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from test_browser_report import SCREENSHOT_DIR, chromium, js_errors, needs_chromium
from test_compare import run_suite

from pytest_resiliency.cli import main
from pytest_resiliency.report import trend
from pytest_resiliency.report.journal import document


def journals(pytester: pytest.Pytester) -> list[Path]:
    """Three runs: fine, then 3x slower and over a tightened budget (a breach), then fine again."""
    paths = []
    for index, (outage, budget, passed) in enumerate(((0.2, "5s", 2), (0.6, "500ms", 1), (0.2, "5s", 2))):
        name = f"run{index + 1}.json"
        run_suite(pytester, outage, f"--resiliency-json={name}", budget=budget).assert_outcomes(
            passed=passed, failed=2 - passed
        )
        paths.append(pytester.path / name)
    return paths


@pytest.mark.slow
@needs_chromium
def test_trend_page_renders_in_chromium(pytester: pytest.Pytester, tmp_path: Path) -> None:
    paths = journals(pytester)
    page = tmp_path / "trend.html"
    assert main(["trend", *map(str, paths), "-o", str(page), "--title", "Orders trends"]) == 0
    html = page.read_text()
    assert "<link" not in html and "src=" not in html  # self-contained: nothing fetched

    dom = chromium(tmp_path / "profile-dom", "--virtual-time-budget=3000", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert not js_errors(dom.stderr), js_errors(dom.stderr)
    out = dom.stdout
    assert "2 of 2 tests shown" in out  # the filter script ran
    assert out.count('class="trend-chart"') == 6  # RTO, lost writes, p99 for each of 2 tests
    assert out.count('<section class="test"') == 2
    # the breach of run 2 is red on orders' RTO and p99 charts; every other measured point is a pass
    assert len(re.findall(r'data-outcome="breach"', out)) == 2
    assert len(re.findall(r'data-outcome="pass"', out)) == 10
    assert "budget 5.00s" in out and "budget 500ms" in out
    assert out.count('class="uncertainty"') == 6  # each RTO point has its bracket drawn
    orders = out[out.index('data-nodeid="test_suite.py::test_orders_recover"') :]
    assert "#2 run2.json" in orders and "BREACH" in orders

    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOT_DIR / "resiliency-trend.png"
    shot.unlink(missing_ok=True)
    run = chromium(tmp_path / "profile-shot", "--window-size=1200,1100", f"--screenshot={shot}", page.as_uri())
    assert run.returncode == 0 and not js_errors(run.stderr), run.stderr[-2000:]
    assert shot.stat().st_size > 20_000
    shutil.copy(page, SCREENSHOT_DIR / "resiliency-trend.html")


def entry(nodeid: str, outcome: str = "pass", **summary: object) -> dict[str, object]:
    base = {"rto": None, "rto_status": "no fault", "lost_writes": None, "p99": None}
    return {"nodeid": nodeid, "outcome": outcome, "budget": {"rpo_writes": 0}, "summary": {**base, **summary}}


def test_unrecovered_absent_and_lost_writes_are_drawn(tmp_path: Path) -> None:
    first = tmp_path / "a.json"
    second = tmp_path / "b.json"
    first.write_text(
        __import__("json").dumps(
            document(
                [
                    entry("t::a", rto=1.0, rto_status="recovered", rto_uncertainty=0.1, lost_writes=0),
                    entry("t::gone", rto=1.0, rto_status="recovered"),
                ]
            )
        )
    )
    second.write_text(
        __import__("json").dumps(document([entry("t::a", "breach", rto_status="not recovered", lost_writes=3)]))
    )
    html = trend.render(trend.runs_from([first, second]))
    a = html[html.index('data-nodeid="t::a"') : html.index('data-nodeid="t::gone"')]
    assert "#2 b.json" in a and "not recovered (breach)" in a  # the ✕ at the top of the RTO chart
    assert 'data-figure="lost_writes"' in a and "#2 b.json" in a and ": 3 — BREACH" in a
    assert "budget 0" in a  # rpo_writes=0 drawn on the lost-writes chart
    gone = html[html.index('data-nodeid="t::gone"') :]
    assert "not in this run" in gone
    assert "not verified in any run" in gone


def test_trend_bad_input_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.json").write_text("[]")
    assert main(["trend", str(tmp_path / "x.json"), "-o", str(tmp_path / "t.html")]) == 2
    assert "x.json: not a pytest-resiliency journal" in capsys.readouterr().err
    assert not (tmp_path / "t.html").exists()
    with pytest.raises(SystemExit):
        main(["trend"])
