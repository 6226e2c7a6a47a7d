"""``pytest --resiliency-recover`` knows every kind of leftover a SIGKILLed pytest can leave.

Each case runs a real Python process that injects one fault (or makes a network namespace)
and SIGKILLs itself inside the ``with`` block, exactly as a killed pytest would leave it. The
leftover is checked from outside (/proc, the filesystem, ``ip netns``, ``nft``, cgroups), then
recovery runs and the leftover must be gone, with a report line saying what was done.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_resiliency import procfs
from pytest_resiliency.faults import undo
from pytest_resiliency.faults.netns import NetNamespace

LEAVE_A_REMOTE_FAULT = """
import os, time
from pytest_resiliency.faults import undo
entry = undo.Entry.create("ec2_stop", "i-0123", "ec2_stop on i-0123 (max 10m00s)", time.time() + 600, None)
os._exit(0)  # dies with the entry in the undo log and no undo recipe, as after a failed AWS revert
"""


def test_an_entry_without_undo_recipe_is_reported_for_checking_by_hand(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    journal_dir = tmp_path / "journal"
    subprocess.run(
        [sys.executable, "-c", LEAVE_A_REMOTE_FAULT],
        env={**os.environ, "RESILIENCY_JOURNAL_DIR": str(journal_dir)},
        check=True,
    )
    assert len(list((journal_dir / "active").glob("*.json"))) == 1
    result = pytester.runpytest_subprocess("--resiliency-recover", f"--resiliency-journal-dir={journal_dir}")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "*CHECK BY HAND ec2_stop on i-0123 (max 10m00s) (left by pid *): it has no local undo recipe",
            "pytest-resiliency: recovered 0 fault(s), 1 to check by hand",
        ]
    )
    assert not list((journal_dir / "active").glob("*.json"))


# -- one SIGKILLed owner per kind of leftover -------------------------------------------------------


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "undo-log"


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


def _die_inside(log: Path, body: str) -> None:
    """Run ``body`` (which ends in a ``with`` block) in a process that SIGKILLs itself inside it."""
    code = "import os, signal\nfrom pytest_resiliency import faults\n" + textwrap.dedent(body)
    code += "    os.kill(os.getpid(), signal.SIGKILL)\n"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "RESILIENCY_JOURNAL_DIR": str(log)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr


def _recover(log: Path) -> list[str]:
    lines, status = undo.recover_report(log)
    assert status == 0, lines
    assert not list((log / "active").glob("*.json")), "recovery left entries behind"
    return lines


def _eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_paused_process_is_resumed(log: Path, sleeper: subprocess.Popen[bytes]) -> None:
    _die_inside(log, f"with faults.pause({sleeper.pid}, max_duration='60s'):\n")
    assert procfs.state(sleeper.pid) == "T"
    lines = _recover(log)
    assert f"    - sent SIGCONT to pid {sleeper.pid}" in lines
    assert procfs.state(sleeper.pid) != "T"


def test_a_kill_has_nothing_to_undo_and_is_not_a_check_by_hand(log: Path, sleeper: subprocess.Popen[bytes]) -> None:
    _die_inside(log, f"with faults.kill({sleeper.pid}, signal='SIGCONT'):\n")
    lines = _recover(log)
    assert any(
        f"nothing to undo for SIGCONT pid {sleeper.pid}" in line and "it acted at once" in line for line in lines
    )
    assert lines[-1] == "pytest-resiliency: recovered 1 fault(s), 0 to check by hand"
    assert not any("CHECK BY HAND" in line for line in lines)


def test_a_restart_has_nothing_to_undo(log: Path) -> None:
    marker = f"rz-restart-{uuid.uuid4().hex[:8]}"
    target = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep(120)  # {marker}"])
    try:
        _die_inside(log, f"with faults.restart({target.pid}, grace='1s'):\n")
        lines = _recover(log)
        assert any("nothing to undo for restart" in line for line in lines)
    finally:
        target.kill()
        target.wait()
        import psutil

        for proc in psutil.process_iter(["cmdline"]):  # the relaunched copy, by its unique marker, by pid
            if any(marker in part for part in proc.info.get("cmdline") or []):
                proc.kill()


def test_a_stressor_is_stopped(log: Path) -> None:
    _die_inside(log, "with faults.cpu_stress(1, 10, engine='python', max_duration='60s') as f:\n"
                     "    open(os.environ['RESILIENCY_JOURNAL_DIR'] + '/pid', 'w').write(str(f.pid))\n")  # fmt: skip
    pgid = int((log / "pid").read_text())
    assert procfs.group_alive(pgid)
    lines = _recover(log)
    assert f"    - sent SIGKILL to group pid {pgid}" in lines
    assert _eventually(lambda: not procfs.group_alive(pgid))


def test_an_io_stress_directory_is_removed(log: Path, tmp_path: Path) -> None:
    where = tmp_path / "io"
    where.mkdir()
    _die_inside(
        log, f"with faults.io_stress(1, bytes='1MB', path={str(where)!r}, engine='python', max_duration='60s'):\n"
    )
    (workdir,) = where.iterdir()
    lines = _recover(log)
    assert f"    - removed {workdir}" in lines
    assert list(where.iterdir()) == []


def test_a_fill_file_is_removed(log: Path, tmp_path: Path) -> None:
    where = tmp_path / "fill"
    where.mkdir()
    _die_inside(log, f"with faults.disk_fill({str(where)!r}, '1MB', max_duration='60s'):\n")
    (fill,) = where.iterdir()
    lines = _recover(log)
    assert f"    - removed {fill}" in lines
    assert not fill.exists()


def test_a_proxy_left_by_its_owner_is_known(log: Path) -> None:
    """The proxy exits with its owner (EOF on its stdin); recovery still knows the toxic's entry."""
    import socket

    with socket.socket() as upstream:
        upstream.bind(("127.0.0.1", 0))
        upstream.listen()
        port = upstream.getsockname()[1]
        _die_inside(log, f"with faults.latency(faults.Proxy({port}), '10ms', max_duration='60s'):\n")
        lines = _recover(log)
    assert any(line.startswith("  undid latency") for line in lines), lines


def test_a_custom_fault_is_a_check_by_hand(log: Path) -> None:
    _die_inside(log, "with faults.custom(lambda: None, lambda: None, name='flip the flag'):\n")
    lines, status = undo.recover_report(log)
    assert status == 0
    assert any("CHECK BY HAND flip the flag" in line for line in lines)


needs_netns = pytest.mark.skipif(NetNamespace.unavailable() is not None, reason=f"{NetNamespace.unavailable()}")


def _netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


@needs_netns
def test_a_network_namespace_made_for_a_blackhole_is_deleted(log: Path, pytester: pytest.Pytester) -> None:
    """Issue 21: after SIGKILL the namespace was left forever; ``--resiliency-recover`` removes it now."""
    _die_inside(log, "from pytest_resiliency.faults.netns import NetNamespace\n"
                     "ns = NetNamespace().create()\n"
                     "open(os.environ['RESILIENCY_JOURNAL_DIR'] + '/ns', 'w').write(ns.name)\n"
                     "with faults.blackhole(8080, netns=ns, max_duration='60s'):\n")  # fmt: skip
    name = (log / "ns").read_text()
    assert _netns_exists(name)
    tables = subprocess.run(["ip", "netns", "exec", name, "nft", "list", "tables"], capture_output=True, text=True)
    assert "resiliency_" in tables.stdout  # the nftables table is left too
    result = pytester.runpytest_subprocess("--resiliency-recover", f"--resiliency-journal-dir={log}")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([f"*undid network namespace {name} *", "*recovered 2 fault(s), 0 to check by hand"])
    assert not _netns_exists(name)
    assert not list((log / "active").glob("*.json"))


def _cgroup_of(pid: int, controller: str) -> str | None:
    return (procfs.cgroups(pid) or {}).get(controller)


@pytest.mark.skipif(
    os.geteuid() != 0 or not Path("/sys/fs/cgroup/cpu/cgroup.procs").exists(),
    reason="confine= recovery needs root and a cgroup v1 cpu hierarchy (this machine's v2 has no cpu controller)",
)
def test_a_confinement_cgroup_is_removed_and_the_process_moved_back(
    log: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    before = _cgroup_of(sleeper.pid, "cpu")
    _die_inside(log, f"with faults.cpu_stress(1, 10, engine='python', confine={sleeper.pid}, max_duration='60s'):\n")
    moved = _cgroup_of(sleeper.pid, "cpu")
    assert moved != before and moved is not None and "resiliency-" in moved
    lines = _recover(log)
    assert any(line.startswith("    - removed cgroup ") for line in lines), lines
    assert _cgroup_of(sleeper.pid, "cpu") == before
    assert not Path("/sys/fs/cgroup/cpu", moved.lstrip("/")).exists()


def test_every_undo_action_kind_is_covered_here() -> None:
    """A new kind of leftover needs a case above: this lists the ones the cases exercise."""
    exercised = {"signal", "signal_group", "unlink", "rmtree", "nft_delete_table", "cgroup_remove", "netns_delete"}
    assert set(undo.UNDO_OPS) == exercised
