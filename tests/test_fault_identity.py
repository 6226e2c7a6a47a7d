"""A fault's identity is the real target: one process addressed two ways is still one target.

Issue 21: a pid and a process name (or a service and its pid) bypassed both the in-process
refusal and the cross-process lock, so two faults held one process at once and the first
revert resumed a process the other still held paused. Real processes throughout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_resiliency import faults, procfs
from pytest_resiliency.errors import FaultError
from pytest_resiliency.faults import base
from pytest_resiliency.targets.service import Service

HTTP = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "{port}"]


@pytest.fixture(autouse=True)
def private_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RESILIENCY_JOURNAL_DIR", str(tmp_path / "log"))
    return tmp_path / "log"


def test_a_pid_and_its_name_are_one_target(named_sleeper: tuple[str, subprocess.Popen[bytes]]) -> None:
    name, proc = named_sleeper
    with faults.pause(proc.pid):
        with pytest.raises(FaultError, match=rf"already has an active pause fault \(pause pid {proc.pid}, the same "
                                             rf"target: process {proc.pid}@\d+\)"):  # fmt: skip
            faults.pause(name).inject()
        assert procfs.state(proc.pid) == "T"
    assert procfs.state(proc.pid) != "T"
    with faults.pause(name):  # free again after the revert
        pass


def test_a_service_and_its_pid_are_one_target(service: Callable[..., Service]) -> None:
    svc = service(HTTP, health="http://127.0.0.1:{port}/")
    assert svc.pid is not None
    with faults.pause(svc), pytest.raises(FaultError, match=rf"the same target: process {svc.pid}@"):
        faults.pause(svc.pid).inject()
    with faults.pause(svc.pid), pytest.raises(FaultError, match=r"already has an active pause fault"):
        faults.pause(svc).inject()


def test_the_identity_is_the_pid_and_its_start_time(named_sleeper: tuple[str, subprocess.Popen[bytes]]) -> None:
    """The start time makes the identity of a reused pid a different one."""
    _, proc = named_sleeper
    with faults.pause(proc.pid) as fault:
        assert fault.identities() == [f"process {proc.pid}@{procfs.start_time(proc.pid)}"]


HOLD = """
import sys, time
from pytest_resiliency import faults
with faults.pause(sys.argv[1], max_duration="30s"):
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_another_process_addressing_it_by_name_keeps_us_waiting(
    named_sleeper: tuple[str, subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Across processes (xdist workers) the lock is keyed by the identity, not by how it was named."""
    name, proc = named_sleeper
    holder = subprocess.Popen([sys.executable, "-c", HOLD, name, "1.0"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        monkeypatch.setattr(base, "LOCK_TIMEOUT", 0.2)
        with pytest.raises(FaultError, match=rf"process {proc.pid}@\d+ is being faulted by pid {holder.pid}"):
            faults.kill(proc.pid, signal="SIGCONT").inject()  # another kind, by pid: still one target
        monkeypatch.setattr(base, "LOCK_TIMEOUT", 10.0)
        with faults.pause(proc.pid):  # waits until the other process reverted
            assert holder.poll() is not None or procfs.state(proc.pid) == "T"
        assert holder.wait(timeout=10) == 0
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


XDIST_TESTS = """
import json, os, time
from pytest_resiliency import faults

def _hold(spec, label):
    with faults.pause(spec, max_duration="30s"):
        start = time.time()
        time.sleep(0.8)
        end = time.time()
    with open(os.environ["IDENTITY_OUT"] + "." + label, "w") as f:
        json.dump([start, end], f)

def test_by_pid():
    _hold(int(os.environ["IDENTITY_PID"]), "pid")

def test_by_name():
    _hold(os.environ["IDENTITY_NAME"], "name")
"""


def test_under_xdist_two_workers_never_hold_one_process_at_once(
    pytester: pytest.Pytester,
    named_sleeper: tuple[str, subprocess.Popen[bytes]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name, proc = named_sleeper
    out = tmp_path / "held"
    monkeypatch.setenv("IDENTITY_PID", str(proc.pid))
    monkeypatch.setenv("IDENTITY_NAME", name)
    monkeypatch.setenv("IDENTITY_OUT", str(out))
    pytester.makepyfile(test_two_ways=XDIST_TESTS)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=2)
    by_pid = json.loads(Path(f"{out}.pid").read_text())
    by_name = json.loads(Path(f"{out}.name").read_text())
    first, second = sorted([by_pid, by_name])
    assert first[1] <= second[0], f"both workers held pid {proc.pid} at once: {by_pid} and {by_name}"
    assert procfs.state(proc.pid) != "T"
