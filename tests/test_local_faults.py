"""Process and resource faults on real processes, files and cgroups; bad input; refusal and locks."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from pytest_resiliency import faults, probes, procfs
from pytest_resiliency.errors import ConfigError, FaultError
from pytest_resiliency.faults import base, undo
from pytest_resiliency.procfs import state as status
from pytest_resiliency.targets.service import Service

ServiceFactory = Callable[..., Service]
HTTP = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "{port}"]


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture(autouse=True)
def private_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(undo.ENV_DIR, str(tmp_path / "journal"))
    return tmp_path / "journal"


def _gone(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> bool:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


# -- process faults -------------------------------------------------------------------------------


def test_kill_by_pid_with_a_named_signal(sleeper: subprocess.Popen[bytes]) -> None:
    with faults.kill(sleeper.pid, signal="TERM") as fault:
        assert fault.describe() == f"SIGTERM pid {sleeper.pid}"
    assert _gone(sleeper)
    assert sleeper.returncode == -signal.SIGTERM
    assert fault.record is not None and fault.record.params["signal"] == "SIGTERM"


def test_kill_by_process_name(named_sleeper: tuple[str, subprocess.Popen[bytes]]) -> None:
    name, proc = named_sleeper
    with faults.kill(name):
        pass
    assert _gone(proc)
    assert proc.returncode == -signal.SIGKILL


def test_pause_stops_the_process_until_revert_and_probe_sees_it(sleeper: subprocess.Popen[bytes]) -> None:
    probe = probes.process(sleeper.pid)
    probe()
    with faults.pause(sleeper.pid):
        assert status(sleeper.pid) == "T"
        with pytest.raises(Exception, match=rf"pid {sleeper.pid} stopped"):
            probe()
    assert status(sleeper.pid) in ("S", "R")
    probe()


def test_pause_is_ended_by_its_watchdog_at_max_duration(sleeper: subprocess.Popen[bytes]) -> None:
    fault = faults.pause(sleeper.pid, max_duration="300ms").inject()
    assert status(sleeper.pid) == "T"
    deadline = time.monotonic() + 5
    while fault.active and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fault.expired and status(sleeper.pid) != "T"


def test_restart_a_service_gives_a_new_healthy_process(service: ServiceFactory) -> None:
    svc = service(HTTP, health="http://127.0.0.1:{port}/")
    before = svc.pid
    with faults.restart(svc):
        pass
    assert svc.wait_for(lambda: svc.pid not in (None, before), 10)
    svc.wait_healthy(10)


def test_restart_a_bare_process_relaunches_its_command(named_sleeper: tuple[str, subprocess.Popen[bytes]]) -> None:
    name, proc = named_sleeper
    with faults.restart(name, grace="1s"):
        pass
    assert _gone(proc)
    deadline = time.monotonic() + 5  # setsid -f returns before the relaunched process execs: poll, bounded
    relaunched: list[psutil.Process] = []
    while not relaunched and time.monotonic() < deadline:
        relaunched = [p for p in psutil.process_iter(["name"]) if p.info["name"] == name]
    try:
        assert len(relaunched) == 1 and relaunched[0].cmdline()[1:] == ["120"]
    finally:
        for p in relaunched:
            p.kill()


def test_second_fault_of_the_same_kind_on_a_target_is_refused(sleeper: subprocess.Popen[bytes]) -> None:
    with faults.pause(sleeper.pid):
        with pytest.raises(FaultError, match=rf"pid {sleeper.pid} already has an active pause fault"):
            faults.pause(sleeper.pid).inject()
        with faults.kill(sleeper.pid, signal="SIGCONT"):  # another kind on the same target is fine
            pass
    with faults.pause(sleeper.pid):  # and after the revert the target is free again
        pass


def test_the_undo_log_holds_the_recipe_while_active(sleeper: subprocess.Popen[bytes], private_journal: Path) -> None:
    with faults.pause(sleeper.pid):
        (entry,) = undo.entries(private_journal)
        assert entry.data["kind"] == "pause"
        assert entry.data["undo"][0]["op"] == "signal" and entry.data["undo"][0]["pid"] == sleeper.pid
    assert undo.entries(private_journal) == []


def test_target_lock_keeps_other_processes_off_the_target(
    sleeper: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    holder = subprocess.Popen(
        [
            sys.executable, "-c",
            "import sys, time; from pytest_resiliency.faults.claims import TargetLock\n"
            f"lock = TargetLock('process {sleeper.pid}@{procfs.start_time(sleeper.pid)}')\n"
            "lock.acquire(5, 'pid holder (test_other.py::t, pause)')\n"
            "print('held', flush=True); time.sleep(1.0); lock.release()",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(base, "LOCK_TIMEOUT", 0.2)
        with pytest.raises(FaultError, match=r"is being faulted by pid holder \(test_other.py::t, pause\)"):
            faults.pause(sleeper.pid).inject()
        monkeypatch.setattr(base, "LOCK_TIMEOUT", 10.0)
        started = time.monotonic()
        with faults.pause(sleeper.pid):  # waits for the other process to let go
            waited = time.monotonic() - started
        assert 0.3 < waited < 5, waited
    finally:
        holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: faults.kill(2**22 + 12345), r"pid 4206649 does not exist"),
        (lambda: faults.kill(-5), r"pid -5 is not a valid pid"),
        (lambda: faults.kill(f"no-such-{uuid.uuid4().hex[:6]}"), r"no process named 'no-such-\w+' is running"),
        (lambda: faults.kill(1.5), r"is not accepted; use a service .*, a pid \(int\) or a process name"),  # type: ignore[arg-type]
        (lambda: faults.kill(os.getpid(), signal="SIGNOPE"), r"signal='SIGNOPE' is not a signal"),
        (lambda: faults.pause(os.getpid(), max_duration=-1), r"max_duration=-1 must be a finite duration > 0"),
        (lambda: faults.cpu_stress(0), r"cores=0 must be a whole number >= 1"),
        (lambda: faults.disk_fill("/tmp", "1 GB"), r"bytes='1 GB' is not a size"),
        (lambda: faults.cpu_stress(1, 150), r"load_percent=150 is out of range; accepted: between 1 and 100"),
        (lambda: faults.memory_stress(percent=101), r"percent=101 is out of range; accepted: > 0 and <= 100"),
        (lambda: faults.memory_stress(), r"give exactly one of bytes= or percent="),
        (lambda: faults.memory_stress(-1), r"bytes=-1 must be a size > 0"),
        (lambda: faults.memory_stress("lots"), r"bytes='lots' is not a size; use a number of bytes or a string"),
        (lambda: faults.disk_fill("/nonexistent", 10), r"path='/nonexistent' is not a directory"),
        (lambda: faults.disk_fill("/tmp", percent=250), r"percent=250 is out of range"),
        (lambda: faults.io_stress(0), r"workers=0 must be a whole number >= 1"),
        (
            lambda: faults.cpu_stress(engine="turbo"),
            r"engine='turbo' is not accepted; use one of auto, stress-ng, python",
        ),
        (lambda: faults.io_stress(confine=1), r"unexpected keyword"),  # type: ignore[call-arg]
    ],
)
def test_bad_input_is_a_clear_error(make: Callable[[], Any], message: str) -> None:
    """Bad arguments are a ConfigError (a ValueError) naming them; a missing target is a FaultError."""
    with pytest.raises((ConfigError, FaultError, TypeError), match=message):
        make().inject()


def test_bad_arguments_are_config_errors_and_missing_targets_fault_errors() -> None:
    with pytest.raises(ConfigError):
        faults.cpu_stress(0)
    with pytest.raises(FaultError):
        faults.kill(2**22 + 12345).inject()


def test_disk_fill_beyond_free_space_is_refused(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    with pytest.raises(FaultError, match=rf"{free * 2} bytes do not fit in"):
        faults.disk_fill(tmp_path, free * 2).inject()


# -- resource faults -------------------------------------------------------------------------------


def _rss(pgid: int) -> int:
    total = 0
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid:
                total += proc.memory_info().rss
        except (ProcessLookupError, psutil.Error):
            continue
    return total


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("engine", ["stress-ng", "python"])
def test_cpu_stress_runs_and_is_gone_after_revert(engine: str) -> None:
    if engine == "stress-ng" and not shutil.which("stress-ng"):
        pytest.skip("stress-ng is not installed")
    with faults.cpu_stress(1, 30, engine=engine, max_duration="20s") as fault:
        pgid = fault.pid
        assert pgid is not None and not _group_gone(pgid)
    assert _group_gone(pgid)


@pytest.mark.parametrize("engine", ["stress-ng", "python"])
def test_memory_stress_holds_the_memory(engine: str) -> None:
    if engine == "stress-ng" and not shutil.which("stress-ng"):
        pytest.skip("stress-ng is not installed")
    size = 48 << 20
    with faults.memory_stress(size, engine=engine, max_duration="20s") as fault:
        pgid = fault.pid
        assert pgid is not None
        deadline = time.monotonic() + 10  # resident memory grows as pages are touched: poll, bounded
        while _rss(pgid) < size * 0.9 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _rss(pgid) >= size * 0.9
    assert _group_gone(pgid)


@pytest.mark.parametrize("engine", ["stress-ng", "python"])
def test_io_stress_writes_in_its_own_directory_and_cleans_it(engine: str, tmp_path: Path) -> None:
    if engine == "stress-ng" and not shutil.which("stress-ng"):
        pytest.skip("stress-ng is not installed")
    where = tmp_path / "io"
    where.mkdir()
    with faults.io_stress(1, bytes=1 << 20, path=where, engine=engine, max_duration="20s") as fault:
        assert fault.workdir is not None and fault.workdir.is_dir()
        workdir = fault.workdir
    assert not workdir.exists()
    assert list(where.iterdir()) == []


def test_disk_fill_takes_the_space_and_gives_it_back(tmp_path: Path) -> None:
    size = 32 << 20
    with faults.disk_fill(tmp_path, size) as fault:
        assert fault.file.stat().st_size == size
        assert fault.file.stat().st_blocks * 512 >= size  # really allocated, not a sparse file
    assert not fault.file.exists()


@pytest.fixture
def small_tmpfs(tmpfs: Callable[[str], Path]) -> Path:
    return tmpfs("8m")


def test_disk_fill_by_percent_fills_the_filesystem_to_that_level(small_tmpfs: Path) -> None:
    with faults.disk_fill(small_tmpfs, percent=75):
        usage = shutil.disk_usage(small_tmpfs)
        assert usage.used / usage.total == pytest.approx(0.75, abs=0.02)
    assert shutil.disk_usage(small_tmpfs).used / usage.total < 0.02
    with faults.disk_fill(small_tmpfs, percent=50), pytest.raises(FaultError, match=r"already 50.0% full"):
        faults.disk_fill(small_tmpfs, percent=40, name="second").inject()


def _df_use(path: Path) -> float:
    """Use as df shows it: used / (used + available to ordinary users)."""
    st = os.statvfs(path)
    used = st.f_blocks - st.f_bfree
    return used / (used + st.f_bavail)


def _write(path: Path, size: int) -> None:
    with (path / "probe").open("wb") as f:
        f.write(b"x" * size)
        f.flush()
        os.fsync(f.fileno())
    (path / "probe").unlink()


def test_disk_fill_percent_is_dfs_use_on_a_filesystem_with_reserved_blocks(ext4_image: Path) -> None:
    assert os.statvfs(ext4_image).f_bavail < os.statvfs(ext4_image).f_bfree, "ext4 keeps blocks for root"
    with faults.disk_fill(ext4_image, percent=90):
        assert _df_use(ext4_image) == pytest.approx(0.90, abs=0.01)
    assert _df_use(ext4_image) < 0.02


@pytest.mark.parametrize("fs", ["ext4", "tmpfs"])
def test_disk_fill_to_100_percent_leaves_no_process_room_to_write(
    fs: str, request: pytest.FixtureRequest, tmpfs: Callable[[str], Path]
) -> None:
    """percent=100 is full: even root (this test) cannot write, the reserved blocks are taken too."""
    path = request.getfixturevalue("ext4_image") if fs == "ext4" else tmpfs("8m")
    with faults.disk_fill(path, percent=100) as fault:
        assert os.statvfs(path).f_bavail == 0 and _df_use(path) == 1.0
        with pytest.raises(OSError) as info:
            _write(path, 1 << 20)
        assert info.value.errno == errno.ENOSPC
        assert fault.file.stat().st_blocks * 512 >= fault.size
    _write(path, 1 << 20)  # the space is back


def _cgroup(pid: int, controller: str) -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            return path
    return ""


@pytest.mark.parametrize("controller", ["cpu", "memory"])
def test_confined_stress_shares_a_cgroup_with_the_service(service: ServiceFactory, controller: str) -> None:
    if os.geteuid() != 0 or not Path(f"/sys/fs/cgroup/{controller}/cgroup.procs").exists():
        pytest.skip(f"confine= needs root and cgroup v1 {controller}")
    svc = service(HTTP, health="http://127.0.0.1:{port}/")
    assert svc.pid is not None
    before = _cgroup(svc.pid, controller)
    fault = (
        faults.cpu_stress(1, 50, confine=svc, max_duration="20s")
        if controller == "cpu"
        else faults.memory_stress(16 << 20, confine=svc, max_duration="20s")
    )
    with fault:
        assert fault.cgroup is not None
        group = fault.cgroup.path
        assert _cgroup(svc.pid, controller).endswith(group.name)
        members = (group / "cgroup.procs").read_text().split()
        assert str(svc.pid) in members and len(members) >= 2  # the service and the stressor
        if controller == "cpu":
            assert (group / "cpu.cfs_quota_us").read_text().strip() == "100000"
        else:
            assert int((group / "memory.limit_in_bytes").read_text()) >= 16 << 20
    assert _cgroup(svc.pid, controller) == before
    assert not group.exists()
    svc.wait_healthy(5)


def test_recover_undoes_entries_of_dead_owners_only(sleeper: subprocess.Popen[bytes], private_journal: Path) -> None:
    """An undo-log entry of a live owner is left alone; one of a dead owner is undone."""
    os.kill(sleeper.pid, signal.SIGSTOP)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    owner = int(dead.stdout)
    entry = undo.Entry.create("pause", f"pid {sleeper.pid}", "pause by a dead pytest", time.time() + 60, None)
    action = {"op": "signal", "pid": sleeper.pid, "start": procfs.start_time(sleeper.pid), "signal": 18}
    entry.data.update(owner_pid=owner, owner_start=1, undo=[action])
    entry.save()
    live = undo.Entry.create("pause", "pid 1", "pause by this very process", time.time() + 60, None)
    report = undo.recover(private_journal)
    assert [(data["description"], done) for data, done in report] == [
        ("pause by a dead pytest", [f"sent SIGCONT to pid {sleeper.pid}"])
    ]
    assert status(sleeper.pid) != "T"
    assert [e.data["id"] for e in undo.entries(private_journal)] == [live.data["id"]]
    live.remove()
    assert json.loads(json.dumps(report))  # builtins only: printable and portable
