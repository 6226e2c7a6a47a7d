"""Where CI reads results: JUnit XML valid in both families, GitHub annotations, a summary that fits.

The JUnit files of real inner runs are validated against the schema pytest checks its
own xunit2 output with (``tests/data/junit/junit-10.xsd``, Jenkins' xUnit plugin schema)
and against its xunit1 extension, and read back with junitparser, a JUnit library
independent of pytest and of this plugin.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import junitparser
import pytest
import xmlschema

from pytest_resiliency.report import github, junit, summary_md, terminal

DATA = Path(__file__).parent / "data" / "junit"
QUIET = ("-p", "no:cacheprovider", "-p", "no:benchmark", "-W", "error")


@pytest.fixture(autouse=True)
def not_under_github_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs inherit the environment: a CI job on GitHub must not change what they print."""
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)


@pytest.fixture(scope="module")
def xunit2_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(DATA / "junit-10.xsd"))


@pytest.fixture(scope="module")
def xunit1_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(DATA / "xunit1-pytest.xsd"))


# ---------------------------------------------------------------- unit level: no pytest run


def entry(nodeid: str = "tests/test_x.py::test_x", **summary: Any) -> dict[str, Any]:
    s = {
        "rto": 2.01,
        "rto_status": "recovered",
        "rpo": 0.0,
        "lost_writes": 0,
        "error_rate": 0.125,
        "p99": 0.014,
        "baseline_p99": 0.004,
        "failed_operations": 12,
        "operations": 400,
        "alert_delay": None,
        **summary,
    }
    b = {"rto": 5.0, "rpo": 0.0, "rpo_writes": None, "error_rate": 0.2, "p99": 0.05, "alert_within": None}
    return {
        "nodeid": nodeid,
        "outcome": "pass",
        "summary": s,
        "budget": {**b, "disruption": None, "tier": None},
        "verdict": {"line": "", "breaches": []},
        "measurement": {"episodes": [{"detection_delay": 0.03, "outage": 1.98, "longest_gap": 2.0}]},
    }


def test_rto_shows_its_uncertainty_when_the_payload_has_it_and_works_without() -> None:
    assert terminal.rto_text(entry(rto_uncertainty=0.98)["summary"]) == "2.01s (±980ms)"
    assert terminal.rto_text(entry()["summary"]) == "2.01s"  # a payload from before rto_uncertainty
    assert terminal.rto_text(entry(rto=0.0, rto_uncertainty=0.0)["summary"]) == "0s"  # nothing failed
    assert terminal.row(entry(rto_uncertainty=0.012))[1] == "2.01s (±12ms) / 5.00s"
    assert terminal.row(entry(rto=None, rto_status="not recovered within 60s"))[1] == "not recovered within 60s / 5.00s"


def test_shorten_cuts_the_middle_and_keeps_more_of_the_test_name() -> None:
    nodeid = "resiliency_tests/test_process_faults.py::test_orders_worker_sigkill_recovers_within_budget[50rps]"
    short = terminal.shorten(nodeid, 40)
    assert len(short) == 40 and "..." in short
    assert short.startswith("resiliency_") and short.endswith("within_budget[50rps]")
    assert terminal.shorten("short", 40) == "short"


@pytest.mark.parametrize("columns", [200, 120])
def test_table_fits_the_width_it_is_given(columns: int) -> None:
    width = min(columns, terminal.DEFAULT_WIDTH)
    entries = [
        entry(f"resiliency_tests/test_dependency_faults.py::test_{'very_' * 12}long_name_{i}", rto_uncertainty=0.98)
        for i in range(3)
    ]
    lines = terminal.table(entries, width)
    assert max(len(line) for line in lines) <= width
    assert lines[0].startswith("test") and "verdict" in lines[0]  # still a table, not stacked
    assert lines[0].startswith("test (in resiliency_tests/)")  # the shared directory, said once
    assert all("..." in line and not line.startswith("resiliency_tests/") for line in lines[2:])
    assert all("2.01s (±980ms) / 5.00s" in line for line in lines[2:])


def test_node_ids_that_fit_are_shown_whole() -> None:
    lines = terminal.table([entry("resiliency_tests/test_a.py::test_a"), entry("resiliency_tests/test_b.py::test_b")])
    assert lines[0].startswith("test ") and "(in" not in lines[0]
    assert lines[2].startswith("resiliency_tests/test_a.py::test_a ")


def test_a_narrow_terminal_stacks_each_experiment_under_its_node_id() -> None:
    lines = terminal.table([entry(rto_uncertainty=0.98)], 60)
    assert max(len(line) for line in lines) <= 60
    assert lines[0] == "tests/test_x.py::test_x"
    assert lines[1].startswith("    PASS · RTO 2.01s (±980ms) / 5.00s")
    assert all(line.startswith("    ") for line in lines[1:])


def test_verbose_details_carry_every_figure_and_the_evidence_note() -> None:
    note = "evidence too sparse around recovery: one probe every 1s"
    e = {**entry(rto_uncertainty=0.98, evidence_note=note), "outcome": "breach"}
    e["verdict"] = {"line": "RTO 2.01s (±980ms) > budget 1s", "breaches": []}
    text = "\n".join(terminal.render([e], width=80, verbose=True))
    assert "BREACH: RTO 2.01s (±980ms) > budget 1s" in text
    assert "detection 30ms" in text and "outage 1.98s" in text and "12 failed of 400 operations" in text
    assert "p99 14ms / 50ms (baseline 4.0ms)" in text
    assert "evidence: evidence too sparse" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_tests_without_the_marker_are_counted_not_tabled() -> None:
    lines = terminal.render([], width=120, unmarked=[entry()])
    assert lines == ["1 test measured without a resiliency marker (no budget, not judged); -v lists them"]
    verbose = terminal.render([], width=120, verbose=True, unmarked=[entry()])
    assert verbose[1] == "    tests/test_x.py::test_x  RTO 2.01s"


def test_github_commands_escape_what_would_end_them() -> None:
    line = github.command("error", "50% lost\nthen: more", file="a,b:c.py", line=7, title="x: y, z")
    assert line == "::error file=a%2Cb%3Ac.py,line=7,title=x%3A y%2C z::50%25 lost%0Athen: more"
    assert github.command("warning", "plain") == "::warning::plain"


def test_github_annotations_point_at_the_test_in_the_repository(tmp_path: Path) -> None:
    breach = {**entry("sub/test_a.py::test_breach"), "outcome": "breach"}
    breach["verdict"] = {"line": "RTO 7.41s > budget 5s", "breaches": []}
    expected = {**breach, "nodeid": "sub/test_a.py::test_expected", "xfail": True}
    sparse = entry("sub/test_a.py::test_sparse", evidence_note="evidence too sparse around recovery")
    locations = {n: ("sub/test_a.py", 9) for n in (breach["nodeid"], expected["nodeid"], sparse["nodeid"])}
    rootdir = tmp_path / "repo" / "pkg"
    lines = github.commands([breach, expected, sparse], locations, rootdir, workspace=str(tmp_path / "repo"))
    assert lines == [
        "::error file=pkg/sub/test_a.py,line=10,title=resiliency budget breached%3A test_breach"
        "::sub/test_a.py::test_breach: RTO 7.41s > budget 5s",
        "::warning file=pkg/sub/test_a.py,line=10,title=resiliency evidence too sparse%3A test_sparse"
        "::sub/test_a.py::test_sparse: evidence too sparse around recovery",
    ]  # the xfail (expected) breach is not annotated


@pytest.mark.parametrize(
    ("setting", "env", "on"),
    [("auto", {"GITHUB_ACTIONS": "true"}, True), ("auto", {}, False), ("never", {"GITHUB_ACTIONS": "true"}, False)],
)
def test_annotations_are_on_under_github_actions_only_by_default(setting: str, env: dict[str, str], on: bool) -> None:
    assert github.enabled(setting, env) is on
    assert github.enabled("always", {}) is True


def test_junit_placement_by_family_and_setting() -> None:
    assert junit.placement("auto", "xunit2") == (False, True)
    assert junit.placement("auto", "xunit1") == (True, False)
    assert junit.placement("auto", "legacy") == (True, False)
    assert junit.placement("both", "xunit2") == (True, True)
    assert junit.placement("properties", "xunit2") == (True, False)
    with pytest.raises(ValueError, match=r"resiliency_junit_figures='props': expected one of auto, properties"):
        junit.placement("props", "xunit2")


def test_property_lines_round_trip_and_never_span_lines() -> None:
    props = [("resiliency.rto_s", "2.01"), ("resiliency.tier", "gold\nsecond line")]
    lines = junit.property_lines(props)
    assert lines == ["[[PROPERTY|resiliency.rto_s=2.01]]", "[[PROPERTY|resiliency.tier=gold second line]]"]
    assert junit.parse_property_lines("noise\n" + "\n".join(lines)) == {
        "resiliency.rto_s": "2.01",
        "resiliency.tier": "gold second line",
    }


def test_scorecard_states_uncertainty_notes_and_unmarked_tests() -> None:
    text = summary_md.render([entry(rto_uncertainty=0.98, evidence_note="one probe every 1s")], unmarked=2)
    assert "2.01s (±980ms) / 5.00s" in text
    assert "_2 tests measured without a resiliency marker (no budget, not judged) are not listed._" in text
    assert "<summary>Evidence notes</summary>" in text and "one probe every 1s" in text


# ---------------------------------------------------------------- real inner pytest runs

CONFTEST = '''
import http.server
import threading

import pytest


@pytest.fixture
def server():
    """A loopback HTTP server that answers 503 while ``broken`` is set."""
    broken = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(503 if broken.is_set() else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.broken = broken
    yield httpd
    httpd.shutdown()
    httpd.server_close()
'''

SUITE = """
import time

import pytest

from pytest_resiliency import faults, probes


def outage(server, experiment, seconds):
    experiment.monitor(probes.http(server.url), every="20ms")
    time.sleep(0.15)
    with faults.custom(server.broken.set, server.broken.clear, name="outage"):
        time.sleep(seconds)


@pytest.mark.resiliency(rto="5s", recovery_window="100ms")
def test_within_budget_with_a_long_name_that_a_terminal_summary_has_to_shorten_in_the_middle(server, experiment):
    print("captured by the test")
    outage(server, experiment, 0.1)


@pytest.mark.resiliency(rto="100ms", rpo=0, recovery_window="100ms")
def test_breach(server, experiment):
    t = time.time()
    for i in range(3):
        experiment.record_write(f"k{i}", t, t + 0.001, "ok")
    outage(server, experiment, 0.3)
    experiment.verify_writes(lambda keys: [k for k in keys if k != "k2"])


def test_fixture_only(server, experiment):
    outage(server, experiment, 0.05)


def test_plain():
    pass
"""

FIGURES_OF = {"test_breach": "breach", "test_fixture_only": "pass"}
LONG = "test_within_budget_with_a_long_name_that_a_terminal_summary_has_to_shorten_in_the_middle"
FIGURES_OF[LONG] = "pass"


def make_suite(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_ci_suite=SUITE)


def cases(path: Path) -> dict[str, junitparser.TestCase]:
    """Test cases by name, as junitparser (not pytest, not us) reads the file."""
    xml = junitparser.JUnitXml.fromfile(str(path))
    suites = [xml] if isinstance(xml, junitparser.TestSuite) else list(xml)
    return {case.name: case for suite in suites for case in suite}


def suite_properties(path: Path) -> dict[str, str]:
    xml = junitparser.JUnitXml.fromfile(str(path))
    suite = xml if isinstance(xml, junitparser.TestSuite) else next(iter(xml))
    return {p.name: p.value for p in suite.properties()}  # type: ignore[no-untyped-call]


def check_figures(figures: dict[str, dict[str, str]]) -> None:
    for name, outcome in FIGURES_OF.items():
        assert figures[name]["resiliency.outcome"] == outcome, name
        assert float(figures[name]["resiliency.rto_s"]) > 0, name
    assert float(figures["test_breach"]["resiliency.rto_s"]) > 0.25
    assert figures["test_breach"]["resiliency.lost_writes"] == "1"
    assert figures["test_breach"]["resiliency.rto_budget_s"] == "0.1"
    assert "test_plain" not in figures


def test_default_xunit2_validates_and_its_figures_are_output_lines(
    pytester: pytest.Pytester, xunit2_schema: xmlschema.XMLSchema, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_suite(pytester)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(pytester.path))
    result = pytester.runpytest_subprocess(*QUIET, "--junitxml=junit.xml")
    result.assert_outcomes(passed=3, failed=1)
    path = pytester.path / "junit.xml"
    xunit2_schema.validate(str(path))  # raises, naming the element, if the file is not valid

    read = cases(path)
    assert all(case.child(junitparser.Properties) is None for case in read.values())  # type: ignore[no-untyped-call]
    figures = {
        name: junit.parse_property_lines(case.system_out or "") for name, case in read.items() if name != "test_plain"
    }
    check_figures(figures)
    assert read["test_breach"].system_out.startswith("resiliency: BREACH · RTO ")
    assert re.search(r"RTO \S+ \(±\S+\) > budget 100ms", read["test_breach"].system_out)
    assert read["test_plain"].system_out is None
    assert suite_properties(path)["resiliency.breaches"] == "1"

    out = result.stdout.lines
    start = out.index(next(line for line in out if "resiliency summary" in line))
    summary = out[start : start + 5]
    assert all(len(line) <= 120 for line in summary), summary
    assert any("..." in line and "shorten_in_the_middle" in line for line in summary)  # cut in the middle
    assert "1 test measured without a resiliency marker (no budget, not judged); -v lists them" in out
    line = 1 + SUITE.lstrip("\n").splitlines().index(
        '@pytest.mark.resiliency(rto="100ms", rpo=0, recovery_window="100ms")'
    )
    annotation = [x for x in out if x.startswith("::error ")]
    assert len(annotation) == 1, out
    assert annotation[0].startswith(
        # pytest locates a decorated test at its first decorator: here, the budget that was breached
        f"::error file=test_ci_suite.py,line={line},title=resiliency budget breached%3A test_breach::"
    )
    assert re.search(r"::test_ci_suite.py::test_breach: RTO \S+ \(±\S+\) > budget 100ms", annotation[0])


def test_xunit1_keeps_testcase_properties_valid_against_its_schema(
    pytester: pytest.Pytester, xunit1_schema: xmlschema.XMLSchema, xunit2_schema: xmlschema.XMLSchema
) -> None:
    make_suite(pytester)
    result = pytester.runpytest_subprocess(*QUIET, "-o", "junit_family=xunit1", "--junitxml=junit.xml", "-v")
    result.assert_outcomes(passed=3, failed=1)
    path = pytester.path / "junit.xml"
    xunit1_schema.validate(str(path))
    assert not xunit2_schema.is_valid(str(path))  # file/line attributes and <properties> are xunit1-only
    read = cases(path)
    figures = {
        name: {p.name: p.value for p in case.child(junitparser.Properties) or []}  # type: ignore[no-untyped-call]
        for name, case in read.items()
        if name != "test_plain"
    }
    check_figures(figures)
    assert "[[PROPERTY|" not in path.read_text(encoding="utf-8")
    assert not any(line.startswith("::error") for line in result.stdout.lines)  # not under GitHub Actions
    result.stdout.fnmatch_lines(
        ["*1 test measured without a resiliency marker (no budget, not judged):", "*test_fixture_only*"]
    )


@pytest.mark.parametrize(
    "options",
    [
        ["-n", "2", "-o", "junit_logging=all"],
        ["-o", "junit_logging=system-out", "-o", "junit_log_passing_tests=false"],
    ],
    ids=["xdist-logging-all", "failures-only-logging"],
)
def test_captured_output_and_figures_share_one_system_out_per_case(
    pytester: pytest.Pytester, xunit2_schema: xmlschema.XMLSchema, options: list[str]
) -> None:
    make_suite(pytester)
    result = pytester.runpytest_subprocess(*QUIET, *options, "--junitxml=junit.xml")
    result.assert_outcomes(passed=3, failed=1)
    path = pytester.path / "junit.xml"
    xunit2_schema.validate(str(path))
    read = cases(path)
    for name in FIGURES_OF:
        assert len(list(read[name].iterchildren(junitparser.SystemOut))) == 1, name  # type: ignore[no-untyped-call]
    check_figures({name: junit.parse_property_lines(read[name].system_out or "") for name in FIGURES_OF})
    logs_passing = "junit_log_passing_tests=false" not in options
    assert ("captured by the test" in read[LONG].system_out) is logs_passing
    # the marker travels with the report from the worker: the fixture-only test is still told apart
    assert "1 test measured without a resiliency marker (no budget, not judged); -v lists them" in result.stdout.lines


FIXTURE_ONLY = """
from pytest_resiliency import probes


def test_uses_the_fixture_only(experiment):
    experiment.record_operation(start=0.0, latency=0.001, ok=True)
"""


def test_a_suite_without_marked_experiments_prints_no_resiliency_summary(pytester: pytest.Pytester) -> None:
    """The plugin's own tests use the fixture without the marker: no rows that read like verdicts."""
    pytester.makepyfile(test_fixture_only=FIXTURE_ONLY)
    result = pytester.runpytest(*QUIET, "-p", "no:locust")  # in process: no fresh interpreter needed
    result.assert_outcomes(passed=1)
    assert "resiliency summary" not in result.stdout.str()
    verbose = pytester.runpytest(*QUIET, "-p", "no:locust", "-v")
    verbose.stdout.fnmatch_lines(
        [
            "*= resiliency summary =*",
            "1 test measured without a resiliency marker (no budget, not judged):",
            "    test_fixture_only.py::test_uses_the_fixture_only  RTO no fault",
        ]
    )
    assert "PASS" not in verbose.stdout.str().split("resiliency summary")[1]


def test_properties_under_xunit2_are_an_explicit_choice_that_breaks_the_schema(
    pytester: pytest.Pytester, xunit2_schema: xmlschema.XMLSchema
) -> None:
    """Why the default moved the figures: pytest's own placement fails junit-10.xsd."""
    make_suite(pytester)
    result = pytester.runpytest_subprocess(
        *QUIET, "-o", "resiliency_junit_figures=properties", "--junitxml=junit.xml", "-k", "breach"
    )
    result.assert_outcomes(failed=1)
    with pytest.raises(xmlschema.XMLSchemaValidationError, match="properties"):
        xunit2_schema.validate(str(pytester.path / "junit.xml"))


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("resiliency_junit_figures=xml", "resiliency_junit_figures='xml': expected one of auto, properties"),
        ("resiliency_github_annotations=yes", "resiliency_github_annotations='yes': expected one of auto, always"),
        ("resiliency_summary_width=10", "resiliency_summary_width='10': expected a whole number of columns >= 40"),
    ],
)
def test_bad_report_options_are_usage_errors(pytester: pytest.Pytester, option: str, message: str) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider", "-o", option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


def test_scorecard_headline_tells_expected_breaches_from_real_ones() -> None:
    real = {**entry("t.py::real"), "outcome": "breach"}
    expected = {**entry("t.py::expected"), "outcome": "breach", "xfail": True}
    line = summary_md.headline([real, expected, entry("t.py::fine")])
    assert "❌ 1 breach" in line and "1 expected to fail (xfail)" in line and "✅ 1 passed" in line


def test_common_dir_is_whole_directories_only() -> None:
    assert terminal.common_dir(["a/b/test_x.py::t", "a/b/c/test_y.py::t"]) == "a/b/"
    assert terminal.common_dir(["a/test_x.py::t1", "a/test_x.py::t2"]) == "a/"
    assert terminal.common_dir(["ab/test_x.py::t", "ac/test_y.py::t"]) == ""
    assert terminal.common_dir(["test_x.py::t", "a/test_y.py::t"]) == ""
