"""Process targets: a supervised service, a pid or a process name, resolved to live processes.

Faults and the ``probes.process`` probe share this so "what does `web` mean right now" has
one answer: a service means its current process group, a pid means that process (guarded
against pid reuse by its start time), a name means every process whose name or argv[0]
basename matches — never pytest itself or its ancestors. However a process was addressed,
its identity is its pid and start time (:attr:`Proc.identity`), so faults can tell that a
service and its pid are one target.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

if TYPE_CHECKING:
    import psutil

from .. import errors, procfs
from ..procfs import state as status  # the former home of the /proc state reader
from .service import Service


class HasService(Protocol):
    """A datastore target (RedisServer, an etcd member...): it names its supervised service."""

    @property
    def process(self) -> Service: ...


# What a process fault or probe accepts: a service, a datastore target, a pid, a process name.
ProcessSpec: TypeAlias = "Service | HasService | ProcessTarget | psutil.Process | int | str"


class TargetError(errors.TargetError, ValueError):
    """The process target does not exist or is not a service, pid or name."""


@dataclass(frozen=True)
class Proc:
    """One resolved process: pid plus kernel start time (the pair names one process forever)."""

    pid: int
    start: int | None

    @property
    def identity(self) -> str:
        """``process PID@START``: the same string however the process was addressed."""
        return f"process {self.pid}@{self.start if self.start is not None else procfs.start_time(self.pid)}"


def _protected() -> set[int]:
    """Pytest and its ancestors: a name match must never signal the test runner itself."""
    import psutil

    mine = {os.getpid()}
    with contextlib.suppress(psutil.Error):
        mine.update(p.pid for p in psutil.Process().parents())
    return mine


class ProcessTarget:
    """What ``faults.kill(x)`` / ``pause(x)`` / ``probes.process(x)`` act on."""

    def __init__(self, spec: Any) -> None:
        if isinstance(spec, ProcessTarget):
            spec = spec.spec
        if not isinstance(spec, (Service, int, str)) and isinstance(getattr(spec, "process", None), Service):
            spec = spec.process  # a datastore target (RedisServer, an etcd member...) names its service
        if isinstance(spec, bool) or (not isinstance(spec, (Service, int, str)) and not _is_psutil(spec)):
            raise TargetError(
                f"process target {spec!r} ({type(spec).__name__}) is not accepted; "
                "use a service (from the service fixture), a datastore target, a pid (int) or a process name (str)"
            )
        if _is_psutil(spec):
            spec = int(spec.pid)
        if isinstance(spec, int) and spec <= 0:
            raise TargetError(f"pid {spec} is not a valid pid; pids are positive integers")
        if isinstance(spec, str) and not spec.strip():
            raise TargetError("process name must not be empty")
        self.spec: Service | int | str = spec

    @property
    def is_service(self) -> bool:
        return isinstance(self.spec, Service)

    @property
    def label(self) -> str:
        if isinstance(self.spec, Service):
            return f"service {self.spec.name}"
        if isinstance(self.spec, int):
            return f"pid {self.spec}"
        return f"process {self.spec!r}"

    def resolve(self) -> list[Proc]:
        """The live processes now; raises :class:`TargetError` naming the target when there are none."""
        if isinstance(self.spec, Service):
            pid = self.spec.pid
            if pid is None:
                raise TargetError(
                    f"service {self.spec.name!r} has no running process right now (restarting or stopped)"
                )
            return [Proc(pid, self.spec.start_ticks)]
        if isinstance(self.spec, int):
            start = procfs.start_time(self.spec)
            if start is None:
                raise TargetError(f"pid {self.spec} does not exist (no /proc/{self.spec})")
            return [Proc(self.spec, start)]
        return self._by_name(self.spec)

    def _by_name(self, name: str) -> list[Proc]:
        import psutil

        protected = _protected()
        found = []
        for proc in psutil.process_iter(["name", "cmdline"]):
            if proc.pid in protected:
                continue
            cmdline = proc.info.get("cmdline") or []
            if proc.info.get("name") == name or (cmdline and Path(cmdline[0]).name == name):
                found.append(Proc(proc.pid, procfs.start_time(proc.pid)))
        found = [p for p in found if p.start is not None]
        if not found:
            raise TargetError(
                f"no process named {name!r} is running (matched against the process name and the "
                "basename of argv[0]; pytest and its parents are never matched)"
            )
        return found


def _is_psutil(value: Any) -> bool:
    return type(value).__module__.startswith("psutil") and hasattr(value, "pid")


__all__ = ["HasService", "Proc", "ProcessSpec", "ProcessTarget", "TargetError", "status"]
