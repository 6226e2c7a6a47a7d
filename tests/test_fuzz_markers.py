"""Property-based fuzzing of ``@pytest.mark.resiliency`` values through real pytest runs (issue 21).

The issue's attacker tried 1,200 generated marker inputs: huge integers gave INTERNALERROR and,
under ``-n 2``, one such marker killed the whole session. Here hypothesis writes a file of
marker tests (huge and negative integers, NaN and infinities, non-ASCII digits, ``"5 s"``,
containers, unknown arguments...) next to a plain test, and pytest runs it for real:

* serially, every bad marker is one line of a usage error that names the test and the
  argument, before anything runs; a file of good markers runs;
* with ``-n 2``, each bad test is one setup error, every other test runs to its verdict, no
  worker dies.

A good marker's test may still FAIL: a budget for p99 or RTO with no evidence (these tests
inject nothing) is judged "unknown" or "not measured", by design. What must never happen is
a crash, a traceback, or one test's marker deciding another test's outcome.

The oracle is :func:`pytest_resiliency.budget.parse_marker` in this process: a marker is bad
exactly when it raises :class:`~pytest_resiliency.budget.BudgetError` (anything else it raised
would be a bug in itself, and fails here). Bounded for CI: a fixed seed (derandomize), a few
runs of about fifteen markers each.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from pytest_resiliency.budget import MARKER_ARGUMENTS, BudgetError, Criteria, parse_marker

pytestmark = pytest.mark.slow

# Python source of marker values, so a 5,000-digit integer need not be printed to be written.
SPECIAL = [
    "10**400", "-10**5000", "2**53", "2**53 + 1", "2**63", "-1", "0", "float('nan')", "float('inf')",
    "float('-inf')", "-0.0", "1e-320", "True", "False", "None", "[]", "{}", "[1, 2]", "{'a': 1}", "b'5s'",
    "(1,)", "1j", "'5 s'", "'\\u0665s'", "'\\uff15s'", "' 5s '", "'5ms'", "'5m'", "'5h'", "'5d'",
    "'1e3s'", "'-5s'", "''",
    "'inf'", "'nan'", "'0x10'", "'1_000'", "'5.5.5s'", "'½'", "'5MS'", "'\\n5s'", "'software'", "'az'",
    "'region'", "'hardware'", "'0.5'", "'50%'", "'gold'", "'x' * 5000", "str(10**100)", "'1' * 5000",
]  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(SPECIAL),
    st.integers(-(10**20), 10**20).map(str),
    st.floats().map(lambda f: f"float({str(f)!r})"),
    st.text(max_size=8).map(repr),
)
NAMES = st.sampled_from((*MARKER_ARGUMENTS, "rtoo", "RTO", "budget"))
MARKER = st.tuples(st.lists(VALUES, max_size=2), st.dictionaries(NAMES, VALUES, max_size=4))
BATCH = st.lists(MARKER, min_size=12, max_size=16)
# The issue's own inputs, always run first (the generated ones may or may not hit them).
ISSUE = [
    ([], {"rto": "10**400"}),
    ([], {"tier": "-10**5000"}),
    ([], {"rpo_writes": "10**5000"}),
    ([], {"rto": "'5 s'"}),
    ([], {"rto": "'\\u0665s'"}),  # an Arabic-Indic five
    ([], {"rpo_writes": "2**53"}),  # the largest whole number accepted: the verdict and the journal hold it
    ([], {"error_rate": "float('nan')"}),
    (["'5s'"], {}),
    ([], {}),
]
FAST = ["-p", "no:cacheprovider", "-p", "no:benchmark", "-p", "no:hypothesispytest", "-p", "no:html"]
SETTINGS = settings(
    max_examples=3,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    phases=(Phase.explicit, Phase.generate),  # no shrinking: each example is a real pytest run of seconds
)


def source(marker: tuple[list[str], dict[str, str]]) -> str:
    args, kwargs = marker
    return ", ".join([*args, *(f"{name}={value}" for name, value in kwargs.items())])


def is_bad(marker: tuple[list[str], dict[str, str]]) -> bool:
    """The oracle: parse the same values in this process; only BudgetError means 'bad input'."""
    args, kwargs = marker
    try:
        parse_marker(tuple(eval(a) for a in args), {k: eval(v) for k, v in kwargs.items()}, Criteria())
    except BudgetError:
        return True
    return False


def write_suite(pytester: pytest.Pytester, batch: list[Any]) -> list[str]:
    """One test per marker plus a plain test; returns the names of the tests with a bad marker."""
    lines = ["import pytest", "", "def test_plain():", "    pass", ""]
    for i, marker in enumerate(batch):
        lines += [f"@pytest.mark.resiliency({source(marker)})", f"def test_m{i}(experiment):", "    pass", ""]
    pytester.makepyfile(test_fuzz="\n".join(lines))
    return [f"test_m{i}" for i, marker in enumerate(batch) if is_bad(marker)]


def assert_no_crash(result: pytest.RunResult) -> None:
    out = result.stdout.str() + result.stderr.str()
    for crash in ("INTERNALERROR", "Traceback", "crashed", "replacing crashed worker", "node down"):
        assert crash not in out, out[-4000:]


def assert_ran(result: pytest.RunResult, tests: int, errors: int = 0) -> None:
    """Every test ran to a verdict (passed, or failed by its budget), and only the bad ones errored."""
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors", 0) == errors, result.stdout.str()[-3000:]
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == tests, result.stdout.str()[-3000:]
    lines = result.stdout.lines
    assert "PASSED test_fuzz.py::test_plain" in lines, result.stdout.str()[-3000:]  # never taken down
    failed = [line for line in lines if line.startswith("FAILED ")]
    assert all(" - Failed: " in line for line in failed), failed  # a verdict, not an exception


@SETTINGS
@given(batch=BATCH)
@example(batch=ISSUE)
def test_bad_markers_are_one_usage_error_line_each_serially(pytester: pytest.Pytester, batch: list[Any]) -> None:
    bad = write_suite(pytester, batch)
    result = pytester.runpytest_subprocess(*FAST, "-p", "no:xdist", "-q", "-rA", timeout=120)
    assert_no_crash(result)
    if not bad:
        assert_ran(result, len(batch) + 1)
        return
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    errors = result.stderr.lines
    assert any("invalid resiliency marker:" in line for line in errors), result.stderr.str()
    for name in bad:  # one line per bad test, naming the test and the marker
        named = [line for line in errors if f"test_fuzz.py::{name}: @pytest.mark.resiliency: " in line]
        assert len(named) == 1 and len(named[0]) < 400, (name, errors)
    assert "passed" not in result.stdout.str()  # nothing ran


@SETTINGS
@given(batch=BATCH)
@example(batch=ISSUE)
def test_under_xdist_a_bad_marker_errors_its_own_test_only(pytester: pytest.Pytester, batch: list[Any]) -> None:
    bad = write_suite(pytester, batch)
    result = pytester.runpytest_subprocess(
        *FAST, "-p", "xdist", "-n", "2", "-q", "-rA", "--resiliency-json=journal.json", timeout=120
    )
    assert_no_crash(result)
    assert_ran(result, len(batch) + 1 - len(bad), errors=len(bad))
    for name in bad:  # its own setup error, whose message names the test and the marker in one line
        summary = [line for line in result.stdout.lines if line.startswith(f"ERROR test_fuzz.py::{name} - ")]
        assert len(summary) == 1 and "invalid resiliency marker" in summary[0], (name, result.stdout.str()[-3000:])
        named = [line for line in result.stdout.lines if f"test_fuzz.py::{name}: @pytest.mark.resiliency: " in line]
        assert named and all(len(line) < 400 for line in named), (name, named)
    journal = json.loads((pytester.path / "journal.json").read_text())  # accepted values stay writable
    assert len(journal["tests"]) == len(batch) - len(bad)
