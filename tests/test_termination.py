"""SIGTERM while a fault is active: the fault is reverted, then the process dies of SIGTERM.

Outside a fault SIGTERM keeps its default disposition (see test_do_no_harm.py); these tests
cover the window in which the plugin does act, serially and under xdist, and the corners:
a handler of the user's own, a SIGTERM that lands in the middle of an inject.
"""

from __future__ import annotations

import signal
import time

import pytest
from test_do_no_harm import LEAN, NO_XDIST

from pytest_resiliency import faults
from pytest_resiliency.faults import termination

# Inner tests note what happens to a file, since the process itself dies of SIGTERM.
PREAMBLE = """
import os, signal, time
from pathlib import Path
import pytest
from pytest_resiliency import faults

LOG = Path(os.environ["TERM_LOG"])

def note(what):
    with LOG.open("a") as f:
        f.write(what + "\\n")
"""

INNER = (
    PREAMBLE
    + """
@pytest.mark.parametrize("i", range(4))
def test_fault(i):
    if i != 0:
        return
    with faults.custom(lambda: note("injected"), lambda: note("reverted"), name="marker"):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
        note("not interrupted")
"""
)


XDIST = ["-p", "xdist", "-n", "2"]


def run_inner(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, source: str, *args: str
) -> tuple[pytest.RunResult, list[str]]:
    """Run ``source`` in a real pytest process; return its result and the lines it noted."""
    log = pytester.path / "noted.log"
    monkeypatch.setenv("TERM_LOG", str(log))
    pytester.makepyfile(test_inner=source)
    result = pytester.runpytest_subprocess(*LEAN, *args, "-q", timeout=120)
    return result, log.read_text().splitlines() if log.exists() else []


def test_sigterm_reverts_the_fault_then_pytest_dies_of_sigterm(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, noted = run_inner(pytester, monkeypatch, INNER, *NO_XDIST)
    assert result.ret == -signal.SIGTERM, result.stdout.str()  # exit status 143, as without the plugin
    assert noted == ["injected", "reverted"]


def test_sigterm_in_an_xdist_worker_reverts_and_xdist_replaces_the_worker(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, noted = run_inner(pytester, monkeypatch, INNER, *XDIST)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()  # not 2: the session went on
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*worker 'gw*' crashed while running 'test_inner.py::test_fault[[]0[]]'*"])
    assert noted == ["injected", "reverted"]


def test_the_handler_is_there_only_while_a_fault_is_active() -> None:
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    outer = faults.custom(lambda: None, lambda: None, name="outer")
    inner = faults.custom(lambda: None, lambda: None, name="inner")
    with outer:
        assert termination.installed()
        with inner:
            assert termination.active_count() == 2
        assert termination.installed()  # the outer fault is still acting
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert termination.active_count() == 0


def test_after_a_watchdog_reverted_the_last_fault_settle_restores_the_default() -> None:
    """Only the main thread may set handlers: the experiment fixture's teardown calls settle()."""
    fault = faults.custom(lambda: None, lambda: None, name="short", max_duration="50ms").inject()
    assert termination.installed()
    deadline = time.monotonic() + 5
    while fault.active and time.monotonic() < deadline:  # the watchdog thread reverts it
        time.sleep(0.01)
    assert not fault.active and termination.active_count() == 0
    termination.settle()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_failed_inject_leaves_the_default_disposition() -> None:
    def explode() -> None:
        raise RuntimeError("cannot inject")

    with pytest.raises(RuntimeError, match="cannot inject"), faults.custom(explode, lambda: None, name="broken"):
        pass
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert termination.active_count() == 0


def test_a_handler_of_the_users_own_is_left_alone() -> None:
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        with faults.custom(lambda: None, lambda: None, name="mine"):
            assert not termination.installed()
            signal.raise_signal(signal.SIGTERM)  # the user's handler runs; the fault stays
        assert received == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_sigterm_during_an_inject_waits_for_it_then_reverts(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault is never left half-applied: the inject completes, is reverted, then SIGTERM ends pytest."""
    source = (
        PREAMBLE
        + """
def slow_inject():
    note("inject started")
    os.kill(os.getpid(), signal.SIGTERM)  # arrives while the second fault is being injected
    time.sleep(0.2)
    note("inject finished")

def test_fault():
    with faults.custom(lambda: note("first injected"), lambda: note("first reverted"), name="first"):
        with faults.custom(slow_inject, lambda: note("second reverted"), name="second"):
            note("body ran")
"""
    )
    result, noted = run_inner(pytester, monkeypatch, source, *NO_XDIST)
    assert result.ret == -signal.SIGTERM, result.stdout.str()
    assert noted == ["first injected", "inject started", "inject finished", "second reverted", "first reverted"]


INNER_NO_WITH = (
    PREAMBLE
    + """
@pytest.mark.resiliency()
@pytest.mark.parametrize("i", range(4))
def test_fault(i, experiment):
    if i != 0:
        return
    experiment.inject(faults.custom(lambda: note("injected"), lambda: note("reverted"), name="marker"))
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)
    note("not interrupted")
"""
)


def test_a_fault_left_to_the_experiment_is_reverted_at_teardown_under_xdist(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ``with`` block: SIGTERM unwinds into pytest, the experiment reverts, then the worker dies."""
    result, noted = run_inner(pytester, monkeypatch, INNER_NO_WITH, *XDIST)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()  # not 2: the session went on
    result.assert_outcomes(passed=3, failed=1)
    assert noted == ["injected", "reverted"]
