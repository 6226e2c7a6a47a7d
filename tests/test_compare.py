"""The regression gate: ``pytest-resiliency compare`` and ``--resiliency-compare``.

End to end, journals come from real pytest runs of a suite whose client sees an outage of
a chosen length (``OUTAGE`` seconds); the rules (thresholds, uncertainty, old journals,
new/vanished/unmeasured tests) are checked on journal documents built here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_resiliency.cli import main
from pytest_resiliency.report import compare
from pytest_resiliency.report.journal import document

SUITE = '''
import os, time
import pytest
from pytest_resiliency import faults

OUTAGE = float(os.environ["OUTAGE"])
BUDGET = os.environ.get("BUDGET", "5s")


def outage(experiment, down):
    """A client's operations every 20 ms: failing for ``down`` seconds after the fault, then 2 s of successes."""
    with faults.custom(lambda: None, lambda: None, name="blip"):
        t0 = time.time()
        steps = int((down + 2.0) / 0.02)
        for i in range(steps):
            at = t0 + i * 0.02
            experiment.record_operation(at, 0.001, at - t0 >= down, "GET /", "client")


@pytest.mark.resiliency(rto=BUDGET)
def test_orders_recover(experiment):
    outage(experiment, OUTAGE)


@pytest.mark.resiliency(rto="5s")
def test_payments_recover(experiment):
    outage(experiment, 0.2)
'''
QUIET = ("-p", "no:cacheprovider", "-p", "no:locust", "-p", "no:randomly", "-p", "no:benchmark")


def runpytest(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """In process (fast) unless xdist is asked for, which gets its own interpreter."""
    if "-n" in args:
        return pytester.runpytest_subprocess(*QUIET, *args)
    return pytester.runpytest_inprocess(*QUIET, *args)


def run_suite(pytester: pytest.Pytester, outage: float, *args: str, budget: str = "5s") -> pytest.RunResult:
    pytester.makepyfile(test_suite=SUITE)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OUTAGE", str(outage))
        mp.setenv("BUDGET", budget)
        return runpytest(pytester, *args)


def journal(pytester: pytest.Pytester, outage: float, name: str) -> Path:
    run_suite(pytester, outage, f"--resiliency-json={name}").assert_outcomes(passed=2)
    return pytester.path / name


def test_a_3x_rto_regression_fails_the_gate_and_an_unchanged_run_passes(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = journal(pytester, 0.2, "baseline.json")
    same = journal(pytester, 0.2, "same.json")
    worse = journal(pytester, 0.6, "worse.json")

    assert main(["compare", str(baseline), str(same)]) == 0
    out = capsys.readouterr().out
    assert "REGRESSED" not in out and out.rstrip().endswith("OK: no regression in 2 compared tests")

    assert main(["compare", str(baseline), str(worse), "--markdown", str(pytester.path / "summary.md")]) == 1
    out = capsys.readouterr().out
    regressed = [line for line in out.splitlines() if line.endswith("REGRESSED")]
    assert any(line.split()[:2] == ["test_suite.py::test_orders_recover", "RTO"] for line in regressed), out
    assert not any("test_payments_recover" in line for line in regressed), out
    assert "FAILED: " in out
    md = (pytester.path / "summary.md").read_text()
    assert md.startswith("### ❌ Resiliency regression gate")
    assert "| `test_suite.py::test_orders_recover` | RTO |" in md and "❌ **regressed**" in md

    # the same regression can be tolerated explicitly, figure by figure
    loose = ["--max-regression", "rto:500%", "--max-regression", "error_rate:off"]
    assert main(["compare", str(baseline), str(worse), *loose]) == 0
    assert "rto" in json.dumps(capsys.readouterr().out)
    # and the other way round it is an improvement
    assert main(["compare", str(worse), str(baseline), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert {(r["nodeid"].split("::")[1], r["figure"]): r["status"] for r in rows}[
        ("test_orders_recover", "rto")
    ] == "improved"


def test_in_run_gate_fails_the_session_on_a_regression(pytester: pytest.Pytester) -> None:
    baseline = journal(pytester, 0.2, "baseline.json")
    worse = run_suite(pytester, 0.6, f"--resiliency-compare={baseline}", "--resiliency-summary-md=summary.md")
    worse.assert_outcomes(passed=2)  # every test passed its budget...
    assert worse.ret == 1  # ...but the session fails: recovery got 3x slower than the baseline
    worse.stdout.fnmatch_lines(["*resiliency regression gate*", "test_suite.py::test_orders_recover*RTO*REGRESSED"])
    assert "Resiliency regression gate" in (pytester.path / "summary.md").read_text()

    same = run_suite(pytester, 0.2, f"--resiliency-compare={baseline}", "-n", "2")
    same.assert_outcomes(passed=2)
    assert same.ret == 0
    same.stdout.fnmatch_lines(["*OK: no regression in 2 compared tests*"])


def test_in_run_gate_bad_input_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    missing = runpytest(pytester, "--resiliency-compare=nope.json")
    assert missing.ret == pytest.ExitCode.USAGE_ERROR
    missing.stderr.fnmatch_lines(["*--resiliency-compare: *nope.json: no such file*"])
    (pytester.path / "base.json").write_text(json.dumps(document([])))
    bad = runpytest(pytester, "--resiliency-compare=base.json", "--resiliency-max-regression=20")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*a value for every figure must be a percentage such as 20%*"])
    alone = runpytest(pytester, "--resiliency-max-regression=20%")
    alone.stderr.fnmatch_lines(["*--resiliency-max-regression needs --resiliency-compare=BASELINE.json*"])
    plain = runpytest(pytester, "--resiliency-compare=base.json")
    assert plain.ret == 0  # no resiliency test in the run: nothing to compare, nothing fails


def entry(nodeid: str, **summary: Any) -> dict[str, Any]:
    base = {"rto": None, "rto_status": "no fault", "rpo": None, "lost_writes": None, "error_rate": None, "p99": None}
    return {"nodeid": nodeid, "outcome": "pass", "budget": {}, "summary": {**base, **summary}}


def doc(*entries: dict[str, Any]) -> dict[str, Any]:
    return document(list(entries))


def status(base: dict[str, Any], cur: dict[str, Any], *specs: str, figure: str = "rto") -> str:
    result = compare.compare(doc(base), doc(cur), compare.parse_thresholds(list(specs)))
    return next(r.status for r in result.rows if r.figure.key == figure)


def rto(value: float | None, unc: float | None = None, **extra: Any) -> dict[str, Any]:
    status_ = "recovered" if value is not None else "not recovered"
    return entry("t::a", rto=value, rto_status=status_, rto_uncertainty=unc, **extra)


def test_worse_beyond_the_threshold_but_within_the_uncertainty_is_not_a_regression() -> None:
    # 1.0 s -> 1.5 s is +50 % (> 20 %), but the current bracket [0.9, 1.5] overlaps the baseline's
    assert status(rto(1.0, 0.05), rto(1.5, 0.6)) == compare.WITHIN_UNCERTAINTY
    assert status(rto(1.0, 0.05), rto(1.5, 0.4)) == compare.REGRESSED
    # within the threshold: unchanged, whatever the uncertainty
    assert status(rto(1.0, 0.0), rto(1.15, 0.0)) == compare.UNCHANGED
    assert status(rto(1.0, 0.0), rto(1.15, 0.0), "10%") == compare.REGRESSED
    assert status(rto(1.0, 0.0), rto(1.15, 0.0), "rto:100ms") == compare.REGRESSED
    assert status(rto(1.0, 0.0), rto(1.15, 0.0), "rto:200ms") == compare.UNCHANGED
    assert status(rto(1.0, 0.0), rto(9.0, 0.0), "rto:off") == compare.NOT_COMPARED


def test_older_journals_fall_back_to_resolution_then_to_no_uncertainty() -> None:
    old = {"resolution": 0.3}
    # rto ± resolution: [0.7, 1.3] against [1.3, 1.9] still touch -> not proven worse
    assert (
        status(
            entry("t::a", rto=1.0, rto_status="recovered", **old), entry("t::a", rto=1.6, rto_status="recovered", **old)
        )
        == compare.WITHIN_UNCERTAINTY
    )
    assert (
        status(
            entry("t::a", rto=1.0, rto_status="recovered", **old), entry("t::a", rto=2.0, rto_status="recovered", **old)
        )
        == compare.REGRESSED
    )
    # neither key: uncertainty 0
    assert (
        status(entry("t::a", rto=1.0, rto_status="recovered"), entry("t::a", rto=1.3, rto_status="recovered"))
        == compare.REGRESSED
    )
    # the newer key wins over the older one
    both = {"rto_uncertainty": 0.0, "resolution": 5.0}
    assert (
        status(
            entry("t::a", rto=1.0, rto_status="recovered", **both),
            entry("t::a", rto=1.3, rto_status="recovered", **both),
        )
        == compare.REGRESSED
    )


def test_unrecovered_lost_writes_and_other_figures() -> None:
    assert status(rto(1.0), rto(None)) == compare.REGRESSED
    assert status(rto(None), rto(1.0)) == compare.IMPROVED
    assert status(rto(None), rto(None)) == compare.UNCHANGED
    # lost writes are exact: from 0 to 1 is a regression at any percentage
    lost = {"rto": 1.0, "rto_status": "recovered"}
    assert (
        status(
            entry("t::a", lost_writes=0, rpo=0.0, **lost),
            entry("t::a", lost_writes=1, rpo=0.2, **lost),
            figure="lost_writes",
        )
        == compare.REGRESSED
    )
    assert (
        status(
            entry("t::a", lost_writes=0, **lost),
            entry("t::a", lost_writes=1, **lost),
            "lost_writes:1",
            figure="lost_writes",
        )
        == compare.UNCHANGED
    )
    assert (
        status(entry("t::a", p99=0.010, **lost), entry("t::a", p99=0.030, **lost), "p99:50ms", figure="p99")
        == compare.UNCHANGED
    )
    assert (
        status(entry("t::a", error_rate=0.01, **lost), entry("t::a", error_rate=0.05, **lost), figure="error_rate")
        == compare.REGRESSED
    )


def test_new_vanished_and_unmeasured_tests_are_listed_not_errors(capsys: pytest.CaptureFixture[str]) -> None:
    base = doc(rto(1.0, 0.01), entry("t::gone", rto=1.0, rto_status="recovered"), entry("t::nofault"))
    cur = doc(rto(1.0, 0.01), entry("t::added", rto=2.0, rto_status="recovered"), entry("t::nofault"))
    result = compare.compare(base, cur)
    assert (result.new, result.vanished, result.unmeasured) == (["t::added"], ["t::gone"], ["t::nofault"])
    assert result.exit_code == 0
    lines = compare.text_lines(result)
    assert "new (not in the baseline): 1" in lines and "  t::added" in lines
    assert lines[-1] == "OK: no regression in 1 compared test (1 new, 1 vanished, 1 unmeasured)"
    md = compare.markdown(result)
    assert "**New:** `t::added`" in md and "**Vanished:** `t::gone`" in md and "**Unmeasured:** `t::nofault`" in md


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("20", "a value for every figure must be a percentage such as 20%"),
        ("-5%", "is not a percentage >= 0"),
        ("latency:10%", "unknown figure 'latency'; accepted: rto, rpo, lost_writes, p99, error_rate"),
        ("rto:fast", "'fast' must be a percentage, off, or a duration such as 250ms"),
        ("lost_writes:1.5", "must be a percentage, off, or a whole number of writes"),
        ("error_rate:-1", "must be a percentage, off, or a fraction such as 0.01"),
    ],
)
def test_bad_thresholds_are_refused_naming_what_is_accepted(spec: str, message: str) -> None:
    with pytest.raises(compare.CompareError, match=message.replace("(", r"\(").replace(")", r"\)")):
        compare.parse_thresholds([spec])


def test_bad_journals_exit_2_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(doc(rto(1.0))))
    (tmp_path / "junk.json").write_text("{not json")
    (tmp_path / "other.json").write_text(json.dumps({"schema": "something-else", "tests": []}))
    (tmp_path / "notests.json").write_text(json.dumps({"schema": "pytest-resiliency/journal", "tests": [{}]}))
    cases = {
        "missing.json": "missing.json: no such file",
        "junk.json": "junk.json: not a JSON journal",
        "other.json": 'other.json: not a pytest-resiliency journal (expected "schema": "pytest-resiliency/journal")',
        "notests.json": 'notests.json: "tests" must be a list of test entries with a "nodeid"',
    }
    for name, message in cases.items():
        assert main(["compare", str(good), str(tmp_path / name)]) == 2
        assert message in capsys.readouterr().err
    assert main(["compare", str(good), str(good), "--max-regression", "p99:soon"]) == 2
    assert "'soon' must be" in capsys.readouterr().err
