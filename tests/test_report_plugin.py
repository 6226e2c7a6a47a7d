"""Reports end to end: pytest-html, JUnit XML, JSON journal and the Markdown scorecard, serial and -n 2.

Each run is a real inner pytest (``pytester.runpytest_subprocess``) whose experiments
monitor a loopback HTTP server that answers 503 while a ``faults.custom`` is active.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from junit_figures import case_figures

from pytest_resiliency.report.journal_schema import validate

pytestmark = pytest.mark.slow

CONFTEST = '''
import http.server
import threading
import time

import pytest


class FlakyServer:
    """A loopback HTTP server that answers 503 while broken; counts what it served."""

    def __init__(self):
        self.broken = threading.Event()
        self.served = 0
        self.log = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.served += 1
                self.send_response(503 if server.broken.is_set() else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/health"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def break_(self):
        self.broken.set()
        self.log.append("ERROR backend down: connection refused by db")

    def fix(self):
        self.broken.clear()
        self.log.append("INFO backend back")

    def wait_some_successes(self, count=10, timeout=10.0):
        deadline = time.monotonic() + timeout
        while self.served < count:
            assert time.monotonic() < deadline, "the monitor never reached the server"
            time.sleep(0.01)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = FlakyServer()
    yield s
    s.close()
'''

EXPERIMENTS = """
import time

import pytest

from pytest_resiliency import faults, probes


@pytest.mark.resiliency(rto="300ms", recovery_window="300ms")
def test_outage_breach(server, experiment):
    experiment.monitor(probes.http(server.url), every="20ms")
    experiment.attach("logs:server", lambda: "\\n".join(server.log))
    server.wait_some_successes()
    with faults.custom(server.break_, server.fix, name="break", target=server.url):
        time.sleep(0.8)


@pytest.mark.resiliency(rto="3s", rpo=0, recovery_window="300ms")
def test_outage_pass(server, experiment):
    experiment.monitor(probes.http(server.url), every="20ms")
    server.wait_some_successes()
    t = time.time()
    for i in range(5):
        experiment.record_write(f"k{i}", t, t + 0.01, "ok")
    with faults.custom(server.break_, server.fix, name="blip"):
        time.sleep(0.2)
    experiment.verify_writes(lambda keys: keys)


@pytest.mark.resiliency(rto="3s", rpo=0, recovery_window="300ms")
def test_lost_writes(server, experiment):
    experiment.monitor(probes.http(server.url), every="20ms")
    server.wait_some_successes()
    for i in range(10):
        t = time.time()
        experiment.record_write(f"k{i}", t, t + 0.005, "ok")
        time.sleep(0.01)
    with faults.custom(server.break_, server.fix, name="failover"):
        time.sleep(0.2)
    experiment.verify_writes(lambda keys: [k for k in keys if k not in ("k8", "k9")])


def test_plain():
    assert True
"""

EXPECTED = {
    "test_experiments.py::test_outage_breach": "breach",
    "test_experiments.py::test_outage_pass": "pass",
    "test_experiments.py::test_lost_writes": "breach",
}


# No cache files in the inner runs; pytest-benchmark (if installed) warns under -n, and -W error
# is there to catch *our* warnings.
QUIET = ("-p", "no:cacheprovider", "-p", "no:benchmark", "-W", "error")


def make_suite(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_experiments=EXPERIMENTS)


def junit_cases(path: Path) -> dict[str, dict[str, str]]:
    """nodeid-ish name -> the testcase's properties."""
    root = ET.parse(path).getroot()
    out = {}
    for case in root.iter("testcase"):
        out[f"test_experiments.py::{case.get('name')}"] = case_figures(case)
    return out


def suite_properties(path: Path) -> dict[str, str]:
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    props = suite.find("properties")
    return {} if props is None else {p.get("name", ""): p.get("value", "") for p in props}


def check_junit(path: Path) -> None:
    cases = junit_cases(path)
    assert set(EXPECTED) <= set(cases)
    for nodeid, outcome in EXPECTED.items():
        props = cases[nodeid]
        assert props["resiliency.outcome"] == outcome, nodeid
        for name in (
            "resiliency.rto_s",
            "resiliency.rto_budget_s",
            "resiliency.rto_uncertainty_s",
            "resiliency.operations",
        ):
            assert float(props[name]) >= 0, (nodeid, name)
    assert float(cases["test_experiments.py::test_outage_breach"]["resiliency.rto_s"]) > 0.3
    assert cases["test_experiments.py::test_lost_writes"]["resiliency.lost_writes"] == "2"
    assert cases["test_experiments.py::test_outage_pass"]["resiliency.lost_writes"] == "0"
    assert not any(k.startswith("resiliency.") for k in cases["test_experiments.py::test_plain"])
    suite = suite_properties(path)
    assert suite["resiliency.tests"] == "3"
    assert suite["resiliency.breaches"] == "2"
    assert suite["resiliency.lost_writes_total"] == "2"
    worst = max(float(cases[n]["resiliency.rto_s"]) for n in EXPECTED)
    assert float(suite["resiliency.worst_rto_s"]) == pytest.approx(worst, rel=1e-5)
    failure = ET.parse(path).getroot().find(".//testcase[@name='test_outage_breach']/failure")
    assert failure is not None and re.search(r"RTO \S+ \(±\S+\) > budget 300ms", failure.get("message", ""))


def check_journal(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    assert validate(doc) == []
    assert [t["nodeid"] for t in doc["tests"]] == sorted(EXPECTED)  # one entry per test, sorted
    assert {t["nodeid"]: t["outcome"] for t in doc["tests"]} == EXPECTED
    return doc


def test_serial_run_writes_html_junit_journal_and_scorecard(pytester: pytest.Pytester) -> None:
    make_suite(pytester)
    summary = pytester.path / "step_summary.md"
    summary.write_text("# Build\n\nearlier step output\n", encoding="utf-8")
    result = pytester.runpytest_subprocess(
        *QUIET,
        "--html=report.html",
        "--self-contained-html",
        "--junitxml=junit.xml",
        "--resiliency-json=out/journal.json",
        f"--resiliency-summary-md={summary}",
    )
    result.assert_outcomes(passed=2, failed=2)
    check_junit(pytester.path / "junit.xml")
    doc = check_journal(pytester.path / "out" / "journal.json")
    lost = next(t for t in doc["tests"] if t["nodeid"].endswith("test_lost_writes"))
    assert lost["series"]["lost_total"] == 2 and len(lost["series"]["lost_writes"]) == 2

    page = (pytester.path / "report.html").read_text(encoding="utf-8")
    for column in ("rto", "rpo", "verdict"):
        assert f'class="sortable" data-column-type="{column}"' in page
        assert f"col-{column}" in page
    assert page.count("resiliency-chart") >= 3  # one chart per experiment (in the JSON blob)
    assert "fault-window" in page and "NFR budget vs measured" in page
    assert "backend down: connection refused by db" in page  # the logs:server tail

    text = summary.read_text(encoding="utf-8")
    assert text.startswith("# Build\n\nearlier step output\n")  # appended, as GitHub expects
    assert "## Resiliency scorecard" in text
    assert "❌ 2 breach" in text and "✅ 1 passed" in text
    assert "| ❌ | `test_experiments.py::test_outage_breach` |" in text
    assert re.search(r"- `test_experiments.py::test_outage_breach`: RTO \S+ \(±\S+\) > budget 300ms", text)
    result.stdout.fnmatch_lines(["*resiliency summary: *step_summary.md"])


def test_xdist_run_has_properties_on_every_testcase_and_one_journal_entry_per_test(pytester: pytest.Pytester) -> None:
    make_suite(pytester)
    result = pytester.runpytest_subprocess(*QUIET, "-n", "2", "--junitxml=junit.xml", "--resiliency-json=journal.json")
    result.assert_outcomes(passed=2, failed=2)
    check_junit(pytester.path / "junit.xml")
    check_journal(pytester.path / "journal.json")


@pytest.mark.parametrize("family", ["xunit1", "xunit2"])
def test_junit_families_write_properties_without_warnings(pytester: pytest.Pytester, family: str) -> None:
    """The plugin fills ``item.user_properties`` directly; pytest's ``record_property``
    fixture is what warns under xunit2, and the plugin never requests it."""
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_experiments="""
        import pytest
        from pytest_resiliency import faults, probes

        @pytest.mark.resiliency(rto="5s", recovery_window="200ms")
        def test_outage_pass(server, experiment):
            experiment.monitor(probes.http(server.url), every="20ms")
            server.wait_some_successes()
            with faults.custom(server.break_, server.fix, name="blip"):
                server.wait_some_successes(server.served + 5)
        """
    )
    result = pytester.runpytest_subprocess(*QUIET, "-o", f"junit_family={family}", "--junitxml=junit.xml")
    result.assert_outcomes(passed=1)
    assert not re.search(r"warnings summary|\d+ warnings?\b", result.stdout.str())
    props = junit_cases(pytester.path / "junit.xml")["test_experiments.py::test_outage_pass"]
    assert props["resiliency.outcome"] == "pass" and float(props["resiliency.rto_s"]) >= 0
