"""Confinement cgroups for resource faults (``confine=svc``), on cgroup v1 and cgroup v2.

A stressor confined with a service shares one cgroup with it: a cpu quota, or a memory limit,
so the stress hits that service instead of the whole host. Which hierarchy is used depends
on the machine: a v1 hierarchy for the controller (``/sys/fs/cgroup/cpu``) when the service
belongs to one, otherwise the unified v2 hierarchy when it offers the controller.

* **v1**: a child of the service's own cgroup in the controller's hierarchy
  (``cpu.cfs_quota_us``/``cpu.cfs_period_us``, ``memory.limit_in_bytes``).
* **v2**: v2 forbids controllers in a cgroup that holds processes below the root, so the new
  cgroup is a *sibling* of the service's (a child of its parent, or of the root), the
  controller is enabled in the parent's ``cgroup.subtree_control``, and the limit goes to
  ``cpu.max`` or ``memory.max``.

Either way, revert (or the undo log) moves the processes back where they came from and
removes the cgroup (:func:`.undo.run_action`, op ``cgroup_remove``). Root is required.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from .. import procfs
from ..errors import FaultError

CGROUP_ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 100_000


def v2_mount(mounts: str | None = None) -> Path | None:
    """Where the unified (v2) hierarchy is mounted (``/sys/fs/cgroup`` or ``.../unified``), if anywhere."""
    if mounts is None:
        try:
            mounts = Path("/proc/self/mounts").read_text()
        except OSError:
            return None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == "cgroup2":
            return Path(fields[1])
    return None


class Cgroup:
    """A cgroup made for one confinement; :meth:`create`, a limit, :meth:`add` processes."""

    version = 0

    def __init__(self, controller: str, path: Path) -> None:
        self.controller = controller
        self.path = path
        self.restore: dict[str, str] = {}  # pid -> the cgroup directory it came from

    def create(self) -> None:
        try:
            self.path.mkdir()
        except OSError as exc:
            raise FaultError(f"confine=: cannot create cgroup {self.path}: {exc}") from None

    def _write(self, name: str, value: str) -> None:
        try:
            (self.path / name).write_text(value)
        except OSError as exc:
            raise FaultError(f"confine=: cannot write {value!r} to {self.path / name}: {exc}") from None

    def limit_cpu(self, cores: int) -> None:
        raise NotImplementedError

    def limit_memory(self, limit: int) -> None:
        raise NotImplementedError

    def home_of(self, pid: int) -> Path:
        """The cgroup directory ``pid`` belongs to now in this hierarchy."""
        raise NotImplementedError

    def add(self, pid: int) -> None:
        """Move ``pid`` in, remembering where it came from."""
        self.restore[str(pid)] = str(self.home_of(pid))
        self._write("cgroup.procs", str(pid))

    def undo_action(self) -> dict[str, Any]:
        return {"op": "cgroup_remove", "path": str(self.path), "restore": dict(self.restore)}


class CgroupV1(Cgroup):
    """A child of the target's own cgroup in the controller's v1 hierarchy."""

    version = 1

    def __init__(self, controller: str, pid: int, root: Path = CGROUP_ROOT) -> None:
        self.mount = root / controller
        super().__init__(controller, self._home(pid, self.mount, controller) / f"resiliency-{uuid.uuid4().hex[:10]}")

    @staticmethod
    def _home(pid: int, mount: Path, controller: str) -> Path:
        path = (procfs.cgroups(pid) or {}).get(controller)
        if path is None:
            raise FaultError(f"confine=: pid {pid} has no cgroup v1 '{controller}' membership")
        return mount / path.lstrip("/")

    def home_of(self, pid: int) -> Path:
        return self._home(pid, self.mount, self.controller)

    def limit_cpu(self, cores: int) -> None:
        self._write("cpu.cfs_period_us", str(PERIOD_US))
        self._write("cpu.cfs_quota_us", str(PERIOD_US * cores))

    def limit_memory(self, limit: int) -> None:
        self._write("memory.limit_in_bytes", str(limit))


class CgroupV2(Cgroup):
    """A sibling of the target's cgroup in the unified hierarchy, with the controller enabled."""

    version = 2

    def __init__(self, controller: str, pid: int, mount: Path) -> None:
        self.mount = mount
        home = self._home(pid, mount)
        parent = home if home == mount else home.parent  # v2: no controllers where processes live
        super().__init__(controller, parent / f"resiliency-{uuid.uuid4().hex[:10]}")
        self.parent = parent

    @staticmethod
    def _home(pid: int, mount: Path) -> Path:
        path = (procfs.cgroups(pid) or {}).get("")
        if path is None:
            raise FaultError(f"confine=: pid {pid} has no cgroup v2 membership")
        return mount / path.lstrip("/")

    def home_of(self, pid: int) -> Path:
        return self._home(pid, self.mount)

    def create(self) -> None:
        enabled = (self.parent / "cgroup.subtree_control").read_text().split()
        if self.controller not in enabled:
            try:
                (self.parent / "cgroup.subtree_control").write_text(f"+{self.controller}")
            except OSError as exc:
                raise FaultError(
                    f"confine=: cannot enable the cgroup v2 '{self.controller}' controller in {self.parent} "
                    f"({exc}); cgroup v2 allows controllers only where no process lives"
                ) from None
        super().create()

    def limit_cpu(self, cores: int) -> None:
        self._write("cpu.max", f"{PERIOD_US * cores} {PERIOD_US}")

    def limit_memory(self, limit: int) -> None:
        self._write("memory.max", str(limit))


def confinement(controller: str, pid: int, *, root: Path = CGROUP_ROOT, mounts: str | None = None) -> Cgroup:
    """The cgroup to confine ``pid`` with a stressor: v1 when ``pid`` is in a v1 hierarchy, else v2.

    Raises :class:`FaultError` saying what is missing (root, a hierarchy, the controller).
    """
    if os.geteuid() != 0:
        raise FaultError(
            f"confine= needs root to create cgroups (running as uid {os.geteuid()}); "
            "run without confine= to stress the host"
        )
    memberships = procfs.cgroups(pid) or {}
    if (root / controller / "cgroup.procs").exists() and controller in memberships:
        return CgroupV1(controller, pid, root)
    mount = v2_mount(mounts)
    if mount is not None and "" in memberships:
        available = (mount / "cgroup.controllers").read_text().split()
        if controller in available:
            return CgroupV2(controller, pid, mount)
        raise FaultError(
            f"confine=: the '{controller}' controller is neither a cgroup v1 hierarchy at {root / controller} "
            f"nor available in cgroup v2 at {mount} (available there: {', '.join(available) or 'none'})"
        )
    raise FaultError(
        f"confine= needs a cgroup v1 '{controller}' hierarchy at {root / controller} or cgroup v2 with the "
        f"'{controller}' controller; this machine has neither for pid {pid}"
    )


__all__ = ["CGROUP_ROOT", "Cgroup", "CgroupV1", "CgroupV2", "confinement", "v2_mount"]
