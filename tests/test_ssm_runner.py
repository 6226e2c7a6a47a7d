"""The shipped SSM documents executed for real on this machine by the local runner.

Durations are a few seconds; every run is stopped and every process it started is
killed (found by the run's environment marker). Root-only parts (tmpfs, network
namespaces, nftables) create their own and remove them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from pytest_resiliency.ssm.documents import DocumentError
from pytest_resiliency.ssm.runner import LocalRun, netem_available, run

pytestmark = [pytest.mark.slow, pytest.mark.destructive]
root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def _wait(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def _stress(local: LocalRun) -> list[psutil.Process]:
    """stress-ng and its workers (which overwrite their environment with a process title)."""
    found = []
    for parent in local.processes():
        if parent.name() == "stress-ng":
            found.append(parent)
            with contextlib.suppress(psutil.NoSuchProcess):
                found += parent.children(recursive=True)
    return found


def _total(procs: list[psutil.Process], what: str) -> float:
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            if what == "cpu":
                times = proc.cpu_times()
                total += times.user + times.system
            else:
                total += proc.memory_info().rss
    return total


@pytest.mark.skipif(not shutil.which("stress-ng"), reason="stress-ng is not installed")
def test_cpu_stress_burns_cpu_and_stops() -> None:
    with LocalRun("cpu-stress", {"DurationSeconds": 20, "CPU": 1}) as local:
        assert _wait(lambda: len(_stress(local)) >= 2)
        procs = _stress(local)
        before = _total(procs, "cpu")
        time.sleep(1.5)
        after = _total(procs, "cpu")
        assert after - before > 0.5  # one worker on a shared 2-core machine
        result = local.stop()
    assert result.status == "Cancelled" and "rolled back" in result.stdout
    assert local.processes() == []


@pytest.mark.skipif(not shutil.which("stress-ng"), reason="stress-ng is not installed")
def test_memory_stress_allocates() -> None:
    want = psutil.virtual_memory().total * 0.01
    with LocalRun("memory-stress", {"DurationSeconds": 20, "Percent": 1}) as local:
        assert _wait(lambda: _total(_stress(local), "rss") > want * 0.6, timeout=15)
    assert local.processes() == []


@root
def test_disk_fill_fills_and_reverts(tmpfs: Callable[[str], Path]) -> None:
    mount = tmpfs("16m")
    fill = mount / "pytest-resiliency-disk-fill"
    with LocalRun("disk-fill", {"DurationSeconds": 20, "FillPercent": 75, "Path": str(mount)}):
        assert _wait(lambda: shutil.disk_usage(mount).used >= 0.7 * shutil.disk_usage(mount).total)
        assert fill.exists()
    assert not fill.exists() and shutil.disk_usage(mount).used < 1024 * 1024


@pytest.fixture
def victim(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A process with a unique name (a copy of sleep), killed at the end whatever happens."""
    name = f"vic{uuid.uuid4().hex[:8]}"
    binary = tmp_path / name
    shutil.copy("/bin/sleep", binary)
    proc = subprocess.Popen([str(binary), "60"])
    yield name, proc
    proc.kill()
    proc.wait()


def test_kill_process_kills(victim: tuple[str, subprocess.Popen[bytes]]) -> None:
    name, proc = victim
    result = run("kill-process", {"ProcessName": name, "Signal": "SIGKILL"}, timeout=20)
    assert result.ok, result.stderr
    assert proc.wait(timeout=5) == -signal.SIGKILL
    missing = run("kill-process", {"ProcessName": name}, timeout=20)
    assert missing.status == "Failed" and f"no process named {name}" in missing.stderr


def test_pause_process_pauses_then_resumes(victim: tuple[str, subprocess.Popen[bytes]]) -> None:
    name, proc = victim
    status = psutil.Process(proc.pid).status
    with LocalRun("pause-process", {"ProcessName": name, "DurationSeconds": 2}) as local:
        assert _wait(lambda: status() == psutil.STATUS_STOPPED)
        result = local.wait(15)
    assert result.ok, result.stderr
    assert status() != psutil.STATUS_STOPPED


def test_dead_man_switch_resumes_after_kill_9(victim: tuple[str, subprocess.Popen[bytes]]) -> None:
    """SIGKILL of the document's shell skips its trap: the detached dead-man watcher rolls back."""
    name, proc = victim
    status = psutil.Process(proc.pid).status
    with LocalRun("pause-process", {"ProcessName": name, "DurationSeconds": 60}) as local:
        assert _wait(lambda: status() == psutil.STATUS_STOPPED)
        assert local.pid is not None
        os.kill(local.pid, signal.SIGKILL)
        assert _wait(lambda: status() != psutil.STATUS_STOPPED, timeout=10)


def test_a_second_concurrent_fault_is_refused(tmp_path: Path, victim: tuple[str, subprocess.Popen[bytes]]) -> None:
    name, _ = victim
    state = tmp_path / "state"
    with LocalRun("pause-process", {"ProcessName": name, "DurationSeconds": 20}, state_dir=state) as first:
        assert _wait(lambda: (state / "active-fault" / "pid").exists())
        second = run("kill-process", {"ProcessName": name}, state_dir=state, timeout=20)
        assert second.status == "Failed" and "refused: another fault (pause-process) is active" in second.stderr
        assert first.running


def test_runner_refuses_injection_and_enforces_the_timeout() -> None:
    for bad in ("; rm -rf /", "$(id)", "`id`", "5\nid"):
        with pytest.raises(DocumentError, match="DurationSeconds"):
            LocalRun("cpu-stress", {"DurationSeconds": bad})
    if not shutil.which("stress-ng"):
        return
    began = time.monotonic()
    result = run("cpu-stress", {"DurationSeconds": 60, "CPU": 1, "LoadPercent": 10}, timeout=1.5)
    assert result.status == "TimedOut" and time.monotonic() - began < 15
    assert "rolled back" in result.stdout


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"ssmtest{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
    yield name
    subprocess.run(["ip", "netns", "del", name], check=False)


@root
@pytest.mark.skipif(not shutil.which("nft"), reason="nftables is not installed")
def test_blackhole_port_drops_in_a_namespace(netns: str) -> None:
    server = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            netns,
            "python3",
            "-c",
            "import socket,time\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
            "s.bind(('127.0.0.1',8080));s.listen();print('up',flush=True)\n"
            "while True:\n c,_=s.accept();c.close()",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == b"up"
        probe = [
            "ip",
            "netns",
            "exec",
            netns,
            "python3",
            "-c",
            "import socket;socket.create_connection(('127.0.0.1',8080),timeout=0.5)",
        ]

        def reachable() -> bool:
            return subprocess.run(probe, capture_output=True, check=False).returncode == 0

        assert reachable()
        with LocalRun("blackhole-port", {"Port": 8080, "DurationSeconds": 20}, netns=netns) as local:
            assert _wait(lambda: not reachable(), timeout=10), local.result.stderr
        assert reachable()
    finally:
        server.kill()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()


@pytest.mark.parametrize("name", ["network-latency", "packet-loss"])
def test_netem_documents(name: str, netns: str) -> None:
    available, reason = netem_available()
    if not available:
        pytest.skip(f"{name} needs tc netem: {reason}")
    result = run(name, {"Interface": "lo", "DurationSeconds": 1}, netns=netns, timeout=30)
    assert result.ok, result.stderr
