"""Locust forked from the zygote: the same run as a subprocess, stopped exactly, gone with pytest.

Real zygotes and locust processes against a loopback server; the zygote's failure is a real
one too (a module that does not exist), not a mock.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from load_servers import OrdersServer

from pytest_resiliency.experiment import Experiment
from pytest_resiliency.load import forkserver
from pytest_resiliency.load.errors import LoadConfigError
from pytest_resiliency.load.forkserver import FORK_ENV, ZygoteChild
from pytest_resiliency.load.spec import LoadError
from pytest_resiliency.waiting import poll

pytestmark = pytest.mark.slow


@pytest.fixture
def server() -> Iterator[OrdersServer]:
    orders = OrdersServer()
    yield orders
    orders.close()


@pytest.fixture(autouse=True)
def fresh_zygote(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without a zygote (or a remembered failure) and leaves none behind."""
    monkeypatch.delenv(FORK_ENV, raising=False)
    monkeypatch.setattr(forkserver, "_option", None)
    forkserver.reset()
    yield
    forkserver.reset()


def _proc_gone(pid: int) -> bool:
    """Not in /proc at all: exited and reaped (a zombie still has its /proc entry)."""
    return not Path(f"/proc/{pid}").exists()


def _ended(pid: int) -> bool:
    """Gone or a zombie: an orphan's zombie is for pid 1 to reap, which it may do late."""
    try:
        return _stat(pid)[0] == "Z"
    except OSError:
        return True


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat fields after the command name: state, ppid, pgrp, session, ..."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def _in_session(session: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat(int(entry.name))[3]) == session:
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return found


@pytest.mark.parametrize("fork", ["1", "0"], ids=["forked", "subprocess"])
def test_a_run_counts_what_the_server_served_forked_or_not(
    server: OrdersServer, load: Any, experiment: Experiment, monkeypatch: pytest.MonkeyPatch, fork: str
) -> None:
    monkeypatch.setenv(FORK_ENV, fork)
    with load(server.url, users=2, rate=40, writes=1.0) as traffic:
        traffic.wait_steady(successes=40)
        master = traffic.master
        assert master is not None
        if fork == "1":
            zygote = forkserver.zygote_pid()
            assert isinstance(master, ZygoteChild) and zygote is not None
            _state, ppid, _, session = _stat(master.pid)[:4]
            assert int(ppid) == zygote and int(session) == master.pid  # forked, its own session leader
            env = Path(f"/proc/{master.pid}/environ").read_bytes().split(b"\0")
            assert f"RESILIENCY_PARENT_PID={os.getpid()}".encode() in env  # watches pytest, not the zygote
        else:
            assert isinstance(master, subprocess.Popen) and forkserver.zygote_pid() is None
    assert _proc_gone(master.pid)
    evidence = experiment.timeline.snapshot()
    ledger = experiment.verify_writes(traffic.read_back)
    assert ledger.acknowledged >= 40 and ledger.lost == 0
    # A write in flight when the load stopped may be stored and never answered (at most one per
    # user): it is no request, but it is on the ledger, as indeterminate.
    requests = len(evidence.op_name)
    assert requests <= server.writes <= requests + 2
    assert ledger.acknowledged + ledger.recovered == len(server.keys()), "every stored write is on the ledger"


def test_a_broken_locustfile_fails_the_same_forked_or_not(
    load: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locustfile = tmp_path / "broken.py"
    locustfile.write_text("from locust import HttpUser\ndef broken(:\n")
    messages = {}
    for fork in ("1", "0"):
        monkeypatch.setenv(FORK_ENV, fork)
        with pytest.raises(LoadError) as info:
            load("http://127.0.0.1:9", locustfile=locustfile)
        messages[fork] = re.sub(r"pid \d+", "pid N", str(info.value))
    assert "exited with code 1" in messages["1"] and "SyntaxError" in messages["1"] and "broken.py" in messages["1"]
    # The same message but for the outermost traceback frames (runpy's in a subprocess, the zygote's when forked).
    unindented = {
        fork: [line for line in text.splitlines() if not line.startswith(" ")] for fork, text in messages.items()
    }
    assert unindented["1"] == unindented["0"]
    for text in messages.values():
        assert f'File "{locustfile}", line 2' in text


def test_stop_leaves_no_process_and_the_zygote_no_zombie(server: OrdersServer, load: Any) -> None:
    traffic = load(server.url, users=2, rate=40, workers=1)
    traffic.wait_steady()
    pids = traffic.pids
    assert len(pids) == 2 and all(isinstance(p, ZygoteChild) for p in [traffic.master, *traffic.workers])
    zygote = forkserver.zygote_pid()
    assert zygote is not None
    traffic.stop()
    assert [pid for pid in pids if not _proc_gone(pid)] == []
    assert [pid for pid in pids if _in_session(pid)] == []  # nothing of their process groups either
    children = Path(f"/proc/{zygote}/task/{zygote}/children").read_text().split()
    assert children == []  # the zygote reaped them
    assert traffic.master is not None and traffic.master.returncode is not None


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to change which pytest may use")
def test_a_forked_locust_runs_on_the_cpus_pytest_has_now_as_a_subprocess_would(server: OrdersServer, load: Any) -> None:
    everything = os.sched_getaffinity(0)
    first = load(server.url, users=1, rate=20)  # starts the zygote with every CPU
    one = {min(everything)}
    os.sched_setaffinity(0, one)
    try:
        pinned = load(server.url, users=1, rate=20)
    finally:
        os.sched_setaffinity(0, everything)
    assert isinstance(pinned.master, ZygoteChild)
    assert os.sched_getaffinity(pinned.master.pid) == one
    assert os.sched_getaffinity(first.master.pid) == everything
    first.stop()
    pinned.stop()


def test_a_zygote_older_than_the_duration_still_runs_it_whole(server: OrdersServer, load: Any) -> None:
    """Timers in a forked locust count from the fork, not from the zygote's start."""
    load(server.url, users=1, rate=20).stop()  # the zygote now exists
    zygote = forkserver.zygote_pid()
    assert zygote is not None
    started = float(_stat(zygote)[19]) / os.sysconf("SC_CLK_TCK")  # seconds after boot

    def age() -> float:
        return float(Path("/proc/uptime").read_text().split()[0]) - started

    assert poll(lambda: age() > 1.5, timeout=10, every=0.05), "the zygote ages"
    began = time.monotonic()
    traffic = load(server.url, users=2, rate=40, duration="1s")
    assert traffic.master is not None
    traffic.master.wait(timeout=30)
    ran = time.monotonic() - began
    traffic.stop()
    assert ran >= 1.0, f"a duration of 1s ended after {ran:.2f}s"
    assert traffic.ingest.requests >= 20


def test_a_dead_zygote_does_not_lose_its_children_and_is_replaced(server: OrdersServer, load: Any) -> None:
    traffic = load(server.url, users=2, rate=40)
    first = forkserver.zygote_pid()
    assert first is not None
    os.kill(first, signal.SIGKILL)
    # At once: whether the death is already noticed or the request meets a dead pipe, a fresh zygote forks it.
    again = load(server.url, users=1, rate=20)
    assert isinstance(again.master, ZygoteChild) and forkserver.zygote_pid() not in (None, first)
    traffic.wait_steady(successes=20)  # the load runs on without its zygote
    again.wait_steady(successes=5)
    traffic.stop()
    again.stop()
    assert again.master is not None and _proc_gone(again.master.pid)  # reaped by the new zygote
    assert traffic.master is not None and _ended(traffic.master.pid)  # an orphan now
    assert traffic.master is not None and traffic.master.returncode == forkserver.UNKNOWN_EXIT


def test_an_unavailable_zygote_falls_back_to_a_subprocess_and_says_so(
    server: OrdersServer, load: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(forkserver, "ZYGOTE_MODULE", "pytest_resiliency.load.no_such_zygote")
    with load(server.url, users=1, rate=20) as traffic:
        traffic.wait_steady(successes=5)
        assert isinstance(traffic.master, subprocess.Popen)
    log = traffic.logs[0].read_text()
    assert log.startswith("pytest-resiliency: the locust zygote failed (")
    assert "No module named pytest_resiliency.load.no_such_zygote" in log and "started as a subprocess" in log


def test_a_bad_fork_setting_is_a_clear_error(load: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FORK_ENV, "maybe")
    with pytest.raises(LoadConfigError, match=r"RESILIENCY_LOAD_FORK='maybe' is not accepted; use one of 1, on"):
        load("http://127.0.0.1:9")


def test_a_bad_fork_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess("--resiliency-load-fork=maybe")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--resiliency-load-fork: invalid choice: 'maybe' (choose from *on*, *off*)*"])


PRESTART = """
from pytest_resiliency.load import forkserver

def test_uses_load(load):
    assert forkserver.zygote_pid() is not None, "started at collection, before any load()"

def test_plain():
    pass
"""

PLAIN = """
from pytest_resiliency.load import forkserver

def test_plain():
    assert forkserver.zygote_pid() is None, "a suite without load starts no zygote"
"""


OWN_LOAD = """
import pytest
from pytest_resiliency.load import forkserver

@pytest.fixture
def load():
    return "a suite's own fixture that happens to be called load"

def test_own_load(load):
    assert forkserver.zygote_pid() is None, "a fixture of the suite's own named load starts no zygote"
"""


@pytest.mark.parametrize("suite", ["uses load", "plain", "own load fixture", "fork off"])
def test_the_zygote_starts_at_collection_only_for_a_suite_that_uses_load(
    pytester: pytest.Pytester, suite: str
) -> None:
    pytester.makepyfile({"plain": PLAIN, "own load fixture": OWN_LOAD}.get(suite, PRESTART))
    args = ["-p", "no:randomly"] + (["--resiliency-load-fork=off"] if suite == "fork off" else [])
    result = pytester.runpytest(*args)
    if suite == "fork off":
        result.assert_outcomes(failed=1, passed=1)
        result.stdout.fnmatch_lines(["*started at collection, before any load()*"])
    else:
        result.assert_outcomes(passed=2 if suite == "uses load" else 1)
    assert forkserver.zygote_pid() is None or suite == "uses load"


INNER = """
import json, os, signal, sys
import pytest
sys.path.insert(0, {tests!r})
from load_servers import OrdersServer
from pytest_resiliency.load import forkserver

def test_body(load):
    server = OrdersServer()
    traffic = load(server.url, users=2, rate=40)
    traffic.wait_steady()
    zygote = forkserver.zygote_pid()
    with open("pids.json.tmp", "w") as f:
        json.dump({{"load": traffic.pids, "zygote": zygote, "forked": forkserver.enabled()}}, f)
    os.replace("pids.json.tmp", "pids.json")
    if {kill!r}:
        os.kill(os.getpid(), signal.SIGKILL)
"""


def _wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while [p for p in pids if not _ended(p)] and time.monotonic() < deadline:
        time.sleep(0.1)
    return [p for p in pids if not _ended(p)]


@pytest.mark.parametrize("end", ["passes", "sigkill", "fork-off"])
def test_nothing_of_a_pytest_run_remains_after_it(pytester: pytest.Pytester, end: str) -> None:
    pytester.makepyfile(INNER.format(tests=str(Path(__file__).parent), kill=end == "sigkill"))
    args = ["-p", "no:cacheprovider", "-q", *(["--resiliency-load-fork=off"] if end == "fork-off" else [])]
    result = pytester.run(sys.executable, "-m", "pytest", *args, timeout=120)
    started = json.loads((pytester.path / "pids.json").read_text())
    if end == "fork-off":
        assert result.ret == 0 and started["forked"] is False and started["zygote"] is None
    else:
        assert result.ret == (-signal.SIGKILL if end == "sigkill" else 0), result.stdout.str()
        assert started["forked"] is True and started["zygote"] is not None
    # SIGKILL: the zygote sees its stdin close, the locust process sees pytest gone (pidfd).
    assert _wait_gone([*started["load"], *filter(None, [started["zygote"]])], 20) == []
