"""Open the generated report.html in headless Chromium: columns and charts rendered, no JS error.

pytest-html builds the results table in JavaScript from a JSON blob, so ``--dump-dom``
after load shows whether that script ran with our cells and charts in it; Chromium's
console, logged to stderr, shows any uncaught error. A screenshot is kept as a CI
artifact under ``reports/`` (or ``$RESILIENCY_SCREENSHOT_DIR``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from test_report_plugin import CONFTEST, EXPERIMENTS, QUIET

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
SCREENSHOT_DIR = Path(os.environ.get("RESILIENCY_SCREENSHOT_DIR", Path(__file__).resolve().parent.parent / "reports"))


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One headless Chromium run, local files only, bounded in time."""
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def js_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line and ("Uncaught" in line or ":ERROR:" in line)]


@needs_chromium
def test_js_error_detection_works(tmp_path: Path) -> None:
    """The negative control: a page that throws is caught by the same check."""
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>null.boom()</script></body></html>", encoding="utf-8")
    run = chromium(tmp_path / "profile", "--dump-dom", page.as_uri())
    assert any("Uncaught TypeError" in line for line in js_errors(run.stderr)), run.stderr[-2000:]


@needs_chromium
def test_report_renders_columns_and_charts_without_js_errors(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_experiments=EXPERIMENTS)
    result = pytester.runpytest_subprocess(*QUIET, "--html=report.html", "--self-contained-html")
    result.assert_outcomes(passed=2, failed=2)
    # ?collapsed= opens every row, passed ones too, so each chart is laid out
    url = (pytester.path / "report.html").as_uri() + "?collapsed="

    dom = chromium(tmp_path / "profile-dom", "--virtual-time-budget=5000", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert not js_errors(dom.stderr), js_errors(dom.stderr)
    html = dom.stdout
    for column in ("RTO", "RPO", "Verdict"):
        assert f">{column}</th>" in html
    assert html.count('<td class="col-rto">') == 4  # one per test row, built by pytest-html's script
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="resiliency-chart"') == 3
    assert html.count(">BREACH</span>") == 2 and html.count(">PASS</span>") == 1

    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOT_DIR / "resiliency-report.png"
    shot.unlink(missing_ok=True)
    run = chromium(tmp_path / "profile-shot", "--window-size=1280,2600", f"--screenshot={shot}", url)
    assert run.returncode == 0, run.stderr[-2000:]
    assert not js_errors(run.stderr)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    shutil.copy(pytester.path / "report.html", SCREENSHOT_DIR / "resiliency-report.html")
