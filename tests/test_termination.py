"""SIGTERM while a fault is active: the fault is reverted, then the process dies of SIGTERM.

Outside a fault SIGTERM keeps its default disposition (see test_do_no_harm.py); these tests
cover the window in which the plugin does act, serially and under xdist, and the corners:
a handler of the user's own, a SIGTERM that lands in the middle of an inject.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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


# -- an interrupt to the xdist controller (issue 21) ------------------------------------------------

PAUSE_INNER = """
import os, subprocess, sys, time
from pathlib import Path
import pytest
from pytest_resiliency import faults

OUT = Path(os.environ["PAUSE_OUT"])

@pytest.mark.parametrize("i", range(6))
def test_pause(i):
    if i != 0:
        return
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    (OUT / "target.pid").write_text(str(proc.pid))
    (OUT / "worker.pid").write_text(str(os.getpid()))
    with faults.pause(proc.pid, max_duration="120s"):
        (OUT / "paused").write_text("")
        time.sleep(120)
"""


def _state(pid: int) -> str | None:
    """The kernel's run state of ``pid`` ('T' when stopped), or None once it is gone (or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    state = stat[stat.rfind(b")") + 2 :].split()[0].decode()
    return None if state in ("Z", "X") else state


def _wait_for(predicate: Any, timeout: float, since: float | None = None, every: float = 0.005) -> float | None:
    """Poll ``predicate`` until true; the seconds since ``since`` (default: now), or None after ``timeout``."""
    began = time.monotonic() if since is None else since
    while time.monotonic() - began < timeout:
        if predicate():
            return time.monotonic() - began
        time.sleep(every)
    return None


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupt_to_the_xdist_controller_reverts_within_1s_and_exits_within_5s(
    pytester: pytest.Pytester, tmp_path: Path, signum: int
) -> None:
    """The signal goes to the controller only (as ``kill`` or a CI runner's cancel sends it).

    Before: xdist shut the workers down through execnet, which waits 5 s for the running test
    before interrupting it, so the paused process stayed stopped ~5.6 s and pytest took 9-15 s.
    """
    out = tmp_path / "out"
    out.mkdir()
    pytester.makepyfile(test_inner=PAUSE_INNER)
    env = {**os.environ, "PAUSE_OUT": str(out), "RESILIENCY_JOURNAL_DIR": str(tmp_path / "journal")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(__file__).parents[1]), env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "pytest", *LEAN, "-p", "xdist", "-n", "2", "-q", "test_inner.py"]
    controller = subprocess.Popen(cmd, cwd=pytester.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    target = worker = None
    try:
        assert _wait_for(lambda: (out / "paused").exists(), 60), "the fault never started"
        target, worker = int((out / "target.pid").read_text()), int((out / "worker.pid").read_text())
        assert _state(target) == "T"  # really stopped
        signalled = time.monotonic()
        os.kill(controller.pid, signum)
        resumed = _wait_for(lambda: _state(target) not in ("T", "t"), 10, signalled)
        exited = _wait_for(lambda: controller.poll() is not None, 15, signalled)
        worker_gone = _wait_for(lambda: _state(worker) is None, 15, signalled)
        output = controller.communicate(timeout=10)[0].decode(errors="replace") if exited is not None else ""
        assert resumed is not None and resumed < 1.0, f"paused process resumed after {resumed} s\n{output}"
        assert exited is not None and exited < 5.0, f"pytest exited after {exited} s\n{output}"
        assert worker_gone is not None and worker_gone < 5.0, f"worker gone after {worker_gone} s"
    finally:
        if controller.poll() is None:
            controller.kill()
        controller.communicate()
        for pid in (target, worker):
            if pid is not None and _state(pid) is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def test_the_controller_signals_only_its_children_that_own_an_active_fault(tmp_path: Path) -> None:
    """No fault in the journal, or a fault of another process: nobody is signalled."""
    from pytest_resiliency.interrupt import interrupt_workers

    active = tmp_path / "active"
    active.mkdir()
    assert interrupt_workers(tmp_path) == []
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (active / "stranger.json").write_text(json.dumps({"owner_pid": os.getppid()}))  # not our child
        (active / "torn.json").write_text('{"owner_pid": ')  # half-written: skipped
        assert interrupt_workers(tmp_path) == []
        (active / "ours.json").write_text(json.dumps({"owner_pid": child.pid}))
        (active / "ours-again.json").write_text(json.dumps({"owner_pid": child.pid}))
        assert interrupt_workers(tmp_path) == [child.pid]  # once, however many faults it holds
        assert child.wait(timeout=10) == -signal.SIGTERM
    finally:
        child.kill()
        child.wait()
