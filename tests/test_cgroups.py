"""``confine=`` on cgroup v1 and cgroup v2: which hierarchy is chosen, and what v2 writes.

This machine runs cgroups in hybrid mode: cpu and memory are v1 hierarchies, and the unified
(v2) hierarchy at /sys/fs/cgroup/unified offers no cpu or memory controller. So the v1 path
runs for real (tests/test_local_faults.py), the choice of v2 is checked against the real v2
mount where it can be, and the v2 files are checked on a stand-in directory tree where it
cannot — a v2 hierarchy with a cpu controller cannot exist next to v1's (said per test).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_resiliency import faults, procfs
from pytest_resiliency.errors import FaultError
from pytest_resiliency.faults import cgroups
from pytest_resiliency.targets.service import Service

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="confine= creates cgroups, which needs root")
V2 = cgroups.v2_mount()


def _v2_offers(controller: str) -> bool:
    return V2 is not None and controller in (V2 / "cgroup.controllers").read_text().split()


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def test_the_v2_mount_is_found_in_the_mount_table() -> None:
    table = "tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n"
    assert cgroups.v2_mount(table) == Path("/sys/fs/cgroup/unified")
    assert cgroups.v2_mount("cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n") == Path("/sys/fs/cgroup")  # unified mode
    assert cgroups.v2_mount("cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n") is None  # v1 only


@needs_root
@pytest.mark.skipif(not Path("/sys/fs/cgroup/cpu/cgroup.procs").exists(), reason="no cgroup v1 cpu hierarchy here")
def test_v1_is_chosen_where_the_process_is_in_a_v1_hierarchy(sleeper: subprocess.Popen[bytes]) -> None:
    assert isinstance(cgroups.confinement("cpu", sleeper.pid), cgroups.CgroupV1)


@needs_root
@pytest.mark.skipif(V2 is None or _v2_offers("cpu"), reason="needs a v2 hierarchy without a cpu controller")
def test_a_v2_hierarchy_without_the_controller_is_a_clear_error(
    sleeper: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    """The real unified hierarchy of this machine offers no cpu controller: the error says so."""
    assert V2 is not None
    no_v1 = tmp_path / "no-v1"  # as on a machine without v1 hierarchies
    with pytest.raises(FaultError, match=rf"'cpu' controller is neither .* nor available in cgroup v2 at {V2}"):
        cgroups.confinement("cpu", sleeper.pid, root=no_v1)


@pytest.fixture
def fake_v2(tmp_path: Path) -> Path:
    """A stand-in for a unified hierarchy offering cpu and memory.

    A mock, because the real thing cannot exist on this machine: cpu and memory are bound to
    v1 hierarchies, and a controller serves one hierarchy only. Plain files take the writes.
    """
    mount = tmp_path / "unified"
    mount.mkdir()
    (mount / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (mount / "cgroup.subtree_control").write_text("\n")
    (mount / "cgroup.procs").write_text("")
    return mount


@needs_root
def test_v2_is_chosen_without_v1_and_writes_cpu_max(
    fake_v2: Path, tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    home = (procfs.cgroups(sleeper.pid) or {}).get("")
    if home != "/":
        pytest.skip(f"the stand-in tree mirrors a process in the v2 root; this one is in {home}")
    table = f"cgroup2 {fake_v2} cgroup2 rw 0 0\n"
    group = cgroups.confinement("cpu", sleeper.pid, root=tmp_path / "no-v1", mounts=table)
    assert isinstance(group, cgroups.CgroupV2)
    assert group.path.parent == fake_v2  # v2: a sibling, never a child of a cgroup holding processes
    group.create()
    assert (fake_v2 / "cgroup.subtree_control").read_text() == "+cpu"
    group.limit_cpu(2)
    assert (group.path / "cpu.max").read_text() == "200000 100000"
    group.add(sleeper.pid)
    assert (group.path / "cgroup.procs").read_text() == str(sleeper.pid)
    assert group.undo_action() == {
        "op": "cgroup_remove",
        "path": str(group.path),
        "restore": {str(sleeper.pid): str(fake_v2)},
    }


@needs_root
def test_v2_memory_limit_goes_to_memory_max(fake_v2: Path, sleeper: subprocess.Popen[bytes]) -> None:
    group = cgroups.CgroupV2("memory", sleeper.pid, fake_v2)
    group.create()
    group.limit_memory(64 << 20)
    assert (group.path / "memory.max").read_text() == str(64 << 20)


HTTP = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "{port}"]


@needs_root
@pytest.mark.skipif(
    not (_v2_offers("cpu") and not Path("/sys/fs/cgroup/cpu/cgroup.procs").exists()),
    reason=f"a real cgroup v2 cpu controller is needed (v2 at {V2} offers "
    f"{(V2 / 'cgroup.controllers').read_text().split() if V2 else 'nothing'}; cpu is a v1 hierarchy here)",
)
def test_confined_cpu_stress_on_real_cgroup_v2(service: Callable[..., Service]) -> None:
    svc = service(HTTP, health="http://127.0.0.1:{port}/")
    assert svc.pid is not None
    before = (procfs.cgroups(svc.pid) or {}).get("")
    with faults.cpu_stress(1, 50, confine=svc, max_duration="20s") as fault:
        assert isinstance(fault.cgroup, cgroups.CgroupV2)
        group = fault.cgroup.path
        assert (group / "cpu.max").read_text().split() == ["100000", "100000"]
        assert str(svc.pid) in (group / "cgroup.procs").read_text().split()
    assert (procfs.cgroups(svc.pid) or {}).get("") == before
    assert not group.exists()
