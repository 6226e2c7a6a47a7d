"""Local faults: process faults (kill, pause, restart) and resource faults (cpu, memory, io, disk).

Process faults act on a service (its current process group), a pid or a process name.
Resource faults run stress-ng when it is installed and a pure-Python stressor otherwise;
both end by themselves at the fault's maximum duration. ``confine=`` puts the stressor and
a target process into a fresh cgroup v1 (cpu quota, memory limit) nested under the
target's own cgroup, so the stress hits that service instead of the whole host.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal as _signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

from ..budget import BudgetError, parse_duration
from ..targets.process import Proc, ProcessTarget, TargetError, status
from . import stressor as _stressor
from .base import Fault, FaultError
from .journal import process_start

__all__ = ["cpu_stress", "disk_fill", "io_stress", "kill", "memory_stress", "pause", "restart"]

ENGINES = ("auto", "stress-ng", "python")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _target(fault: str, spec: Any) -> ProcessTarget:
    try:
        return ProcessTarget(spec)
    except TargetError as exc:
        raise FaultError(f"faults.{fault}: {exc}") from None


def _resolve(fault: str, target: ProcessTarget) -> list[Proc]:
    try:
        return target.resolve()
    except TargetError as exc:
        raise FaultError(f"faults.{fault}: {exc}") from None


def _signal_of(value: Any) -> _signal.Signals:
    try:
        if isinstance(value, str):
            name = value.upper()
            return _signal.Signals[name if name.startswith("SIG") else "SIG" + name]
        if isinstance(value, int) and not isinstance(value, bool):
            return _signal.Signals(value)
    except (KeyError, ValueError):
        pass
    raise FaultError(f"faults.kill: signal={value!r} is not a signal; use e.g. signal.SIGKILL, 9 or 'SIGTERM'")


def _send(procs: list[Proc], signum: int, group: bool) -> list[int]:
    sent = []
    for proc in procs:
        if process_start(proc.pid) != proc.start:
            continue  # it is gone (or the pid was reused): never signal a stranger
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(proc.pid, signum)
            else:
                os.kill(proc.pid, signum)
            sent.append(proc.pid)
    return sent


class _ProcessFault(Fault):
    """Shared by kill, pause and restart: a process target resolved just before acting."""

    def __init__(self, process: Any, *, name: str | None, max_duration: float | str | None) -> None:
        super().__init__(name=name, max_duration=max_duration)
        self.process = _target(self.kind, process)
        self.procs: list[Proc] = []

    @property
    def target(self) -> str:
        return self.process.label

    @property
    def lock_key(self) -> str:
        return self.process.key

    def _prepare(self) -> None:
        self.procs = _resolve(self.kind, self.process)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "pids": [p.pid for p in self.procs]}


class Kill(_ProcessFault):
    """Send a signal (SIGKILL by default) to the target; a supervised service comes back by itself."""

    kind = "kill"

    def __init__(
        self, process: Any, signal: Any = _signal.SIGKILL, *, name: str | None = None, max_duration: Any = None
    ) -> None:
        self.signal = _signal_of(signal)
        super().__init__(process, name=name, max_duration=max_duration)

    def _inject(self) -> None:
        if not _send(self.procs, self.signal, self.process.is_service):
            raise FaultError(f"faults.kill: {self.target} exited before it could be signalled")

    def _revert(self) -> None:
        """Nothing to undo: a kill is instantaneous; recovery is the service's (or supervisor's) job."""

    def params(self) -> dict[str, Any]:
        return {**super().params(), "signal": self.signal.name}

    def describe(self) -> str:
        return f"{self.signal.name} {self.target}"


class Pause(_ProcessFault):
    """SIGSTOP the target until revert (SIGCONT): the "stuck worker node" that holds connections."""

    kind = "pause"
    needs_expiry_helper = True

    def _inject(self) -> None:
        if not _send(self.procs, _signal.SIGSTOP, self.process.is_service):
            raise FaultError(f"faults.pause: {self.target} exited before it could be paused")
        deadline = time.monotonic() + 1.0  # the kernel stops a running task at its next tick: wait, bounded
        while time.monotonic() < deadline and any(status(p.pid) not in ("T", "Z", None) for p in self.procs):
            time.sleep(0.001)

    def _revert(self) -> None:
        _send(self.procs, _signal.SIGCONT, self.process.is_service)

    def _undo_actions(self) -> list[dict[str, Any]]:
        op = "signal_group" if self.process.is_service else "signal"
        return [{"op": op, "pid": p.pid, "start": p.start, "signal": int(_signal.SIGCONT)} for p in self.procs]

    def describe(self) -> str:
        return f"pause {self.target}"


class Restart(_ProcessFault):
    """Stop the target (SIGTERM, SIGKILL after ``grace``) and start it again at once.

    A service is restarted by its supervisor. A bare pid or name is relaunched with the same
    command line, working directory and environment, detached (it is no child of pytest).
    """

    kind = "restart"

    def __init__(
        self, process: Any, *, grace: float | str = 5.0, name: str | None = None, max_duration: Any = None
    ) -> None:
        super().__init__(process, name=name, max_duration=max_duration)
        try:
            self.grace = parse_duration(grace, "grace")
        except BudgetError as exc:
            raise FaultError(f"faults.restart: {exc}") from None
        self._relaunch: list[dict[str, Any]] = []

    def _prepare(self) -> None:
        super()._prepare()
        if self.process.is_service:
            return
        import psutil

        self._relaunch = []
        for proc in self.procs:
            try:
                p = psutil.Process(proc.pid)
                self._relaunch.append({"cmdline": p.cmdline(), "cwd": p.cwd(), "env": p.environ()})
            except psutil.Error as exc:
                raise FaultError(f"faults.restart: cannot read how pid {proc.pid} was started: {exc}") from None
            if not self._relaunch[-1]["cmdline"]:
                raise FaultError(f"faults.restart: pid {proc.pid} is a kernel thread or zombie; it cannot be restarted")

    def _inject(self) -> None:
        spec = self.process.spec
        if not isinstance(spec, int | str):
            spec.restart_now()
            return
        import psutil

        _send(self.procs, _signal.SIGTERM, False)
        handles = []
        for proc in self.procs:
            with contextlib.suppress(psutil.Error):
                handles.append(psutil.Process(proc.pid))
        _, alive = psutil.wait_procs(handles, timeout=self.grace)
        for p in alive:
            with contextlib.suppress(psutil.Error):
                p.kill()
        for how in self._relaunch:
            # ``setsid -f`` forks and returns at once: the new process belongs to init, not to pytest.
            subprocess.run(
                ["setsid", "-f", *how["cmdline"]],
                cwd=how["cwd"],
                env=how["env"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=True,
                timeout=10,
            )

    def _revert(self) -> None:
        """Nothing to undo: the restart already happened."""

    def describe(self) -> str:
        return f"restart {self.target}"


def kill(process: Any, signal: Any = _signal.SIGKILL, *, name: str | None = None, max_duration: Any = None) -> Kill:
    """Send ``signal`` (default SIGKILL) to a service's process group, a pid, or every process with a name."""
    return Kill(process, signal, name=name, max_duration=max_duration)


def pause(process: Any, *, name: str | None = None, max_duration: Any = None) -> Pause:
    """Freeze the target with SIGSTOP while the ``with`` body runs; SIGCONT on exit or expiry."""
    return Pause(process, name=name, max_duration=max_duration)


def restart(process: Any, *, grace: float | str = 5.0, name: str | None = None, max_duration: Any = None) -> Restart:
    """Restart a service through its supervisor, or a pid/name by stopping and relaunching its command."""
    return Restart(process, grace=grace, name=name, max_duration=max_duration)


# -- resource faults -----------------------------------------------------------------------------


def _number(value: Any, what: str, low: float, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FaultError(f"{what}={value!r} must be a number")
    if value < low or (high is not None and value > high):
        accepted = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
        raise FaultError(f"{what}={value!r} is out of range; accepted: {accepted}")
    return float(value)


def _amount(fault: str, size: Any, percent: Any) -> tuple[int | None, float | None]:
    if (size is None) == (percent is None):
        raise FaultError(
            f"faults.{fault}: give exactly one of bytes= or percent= (got bytes={size!r}, percent={percent!r})"
        )
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise FaultError(f"faults.{fault}: bytes={size!r} must be a whole number of bytes > 0")
        return size, None
    pct = _number(percent, f"faults.{fault}: percent", 0, 100)
    if pct == 0:
        raise FaultError(f"faults.{fault}: percent=0 would do nothing; accepted: > 0 and <= 100")
    return None, pct


def _engine(fault: str, engine: str) -> str:
    if engine not in ENGINES:
        raise FaultError(f"faults.{fault}: engine={engine!r} is not one of {', '.join(ENGINES)}")
    if engine == "auto":
        return "stress-ng" if shutil.which("stress-ng") else "python"
    if engine == "stress-ng" and not shutil.which("stress-ng"):
        raise FaultError(f"faults.{fault}: engine='stress-ng' but stress-ng is not installed (apt install stress-ng)")
    return engine


class _Cgroup:
    """A cgroup v1 created under the target's own cgroup for one controller (cpu or memory)."""

    def __init__(self, controller: str, pid: int) -> None:
        mount = CGROUP_ROOT / controller
        if os.geteuid() != 0 or not (mount / "cgroup.procs").exists():
            raise FaultError(
                f"confine= needs root and a cgroup v1 '{controller}' hierarchy at {mount} "
                f"(running as uid {os.geteuid()}); run without confine= to stress the host"
            )
        self.controller = controller
        self.origin = mount / _cgroup_of(pid, controller).lstrip("/")
        self.path = self.origin / f"resiliency-{uuid.uuid4().hex[:10]}"
        self.restore: dict[str, str] = {}

    def create(self) -> None:
        try:
            self.path.mkdir()
        except OSError as exc:
            raise FaultError(f"confine=: cannot create cgroup {self.path}: {exc}") from None

    def set(self, name: str, value: int) -> None:
        (self.path / name).write_text(str(value))

    def add(self, pid: int) -> None:
        controller_path = CGROUP_ROOT / self.controller / _cgroup_of(pid, self.controller).lstrip("/")
        self.restore[str(pid)] = str(controller_path)
        (self.path / "cgroup.procs").write_text(str(pid))

    def undo_action(self) -> dict[str, Any]:
        return {"op": "cgroup_remove", "path": str(self.path), "restore": dict(self.restore)}


def _cgroup_of(pid: int, controller: str) -> str:
    try:
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controller in controllers.split(","):
                return path
    except OSError:
        pass
    raise FaultError(f"confine=: pid {pid} has no cgroup v1 '{controller}' membership")


class _Stress(Fault):
    """A stressor process (stress-ng or the Python fallback) in its own session, ending at its deadline."""

    controller: ClassVar[str | None] = None

    def __init__(self, *, engine: str, confine: Any, name: str | None, max_duration: Any) -> None:
        super().__init__(name=name, max_duration=max_duration)
        self.engine = _engine(self.kind, engine)
        self.confine = None if confine is None else _target(self.kind, confine)
        if self.confine is not None and self.controller is None:
            raise FaultError(f"faults.{self.kind}: confine= is supported by cpu_stress and memory_stress only")
        self.proc: subprocess.Popen[bytes] | None = None
        self._start: int | None = None
        self.cgroup: _Cgroup | None = None
        self._confined: list[Proc] = []

    @property
    def target(self) -> str:
        return self.confine.label if self.confine is not None else "host"

    @property
    def lock_key(self) -> str:
        return self.confine.key if self.confine is not None else "host"

    def _prepare(self) -> None:
        if self.confine is not None:
            assert self.controller is not None
            self._confined = _resolve(self.kind, self.confine)
            self.cgroup = _Cgroup(self.controller, self._confined[0].pid)

    def _command(self, deadline: float) -> list[str]:
        raise NotImplementedError

    def _configure_cgroup(self, cgroup: _Cgroup) -> None:
        """Set the limits of the confining cgroup (cpu quota, memory limit)."""

    def _inject(self) -> None:
        deadline = time.time() + self.max_duration
        command = self._command(deadline)
        if self.cgroup is not None:
            self.cgroup.create()
            self._configure_cgroup(self.cgroup)
            for proc in self._confined:
                self.cgroup.add(proc.pid)
            procs = self.cgroup.path / "cgroup.procs"
            command = ["/bin/sh", "-c", f'echo $$ > "{procs}" && exec "$@"', "stress", *command]
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._start = process_start(self.proc.pid)

    def _revert(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, _signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=3)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, _signal.SIGKILL)  # stress-ng workers outlive a TERMed parent sometimes
            proc.wait()
            _wait_group_gone(proc.pid, 3.0)
        if self.cgroup is not None:
            from .journal import run_action

            run_action(self.cgroup.undo_action())
            self.cgroup = None

    def _undo_actions(self) -> list[dict[str, Any]]:
        actions: list[dict[str, Any]] = []
        if self.proc is not None:
            actions.append({"op": "signal_group", "pid": self.proc.pid, "start": self._start, "signal": 9})
        if self.cgroup is not None:
            actions.append(self.cgroup.undo_action())
        return actions

    @property
    def pid(self) -> int | None:
        """The stressor's pid (its process group id), while it runs."""
        return self.proc.pid if self.proc is not None else None

    def params(self) -> dict[str, Any]:
        return {**super().params(), "engine": self.engine, "confine": self.target if self.confine else None}

    def _python(self, spec: dict[str, Any]) -> list[str]:
        return [sys.executable, "-I", "-S", _stressor.__file__, json.dumps(spec)]


def _wait_group_gone(pgid: int, timeout: float) -> None:
    """Wait (bounded) until no process of the group is left, so 'reverted' means gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.01)


class CpuStress(_Stress):
    kind = "cpu_stress"
    controller = "cpu"

    def __init__(
        self,
        cores: int | None = None,
        load_percent: float = 100,
        *,
        engine: str = "auto",
        confine: Any = None,
        name: str | None = None,
        max_duration: Any = None,
    ) -> None:
        available = os.cpu_count() or 1
        if cores is not None and (isinstance(cores, bool) or not isinstance(cores, int) or cores < 1):
            raise FaultError(
                f"faults.cpu_stress: cores={cores!r} must be a whole number >= 1 (or None for all {available})"
            )
        self.cores = cores or available
        self.load_percent = _number(load_percent, "faults.cpu_stress: load_percent", 1, 100)
        super().__init__(engine=engine, confine=confine, name=name, max_duration=max_duration)

    def _command(self, deadline: float) -> list[str]:
        if self.engine == "stress-ng":
            seconds = max(1, math.ceil(deadline - time.time()))
            load = f"{self.load_percent:.0f}"
            return ["stress-ng", "--cpu", str(self.cores), "--cpu-load", load, "--timeout", f"{seconds}s", "--quiet"]
        spec = {"kind": "cpu", "workers": self.cores, "load_percent": self.load_percent, "deadline": deadline}
        return self._python(spec)

    def _configure_cgroup(self, cgroup: _Cgroup) -> None:
        cgroup.set("cpu.cfs_period_us", 100_000)
        cgroup.set("cpu.cfs_quota_us", 100_000 * self.cores)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "cores": self.cores, "load_percent": self.load_percent}

    def describe(self) -> str:
        return f"cpu stress {self.cores} core(s) at {self.load_percent:g}% on {self.target}"


class MemoryStress(_Stress):
    kind = "memory_stress"
    controller = "memory"

    def __init__(
        self,
        bytes: int | None = None,
        *,
        percent: float | None = None,
        engine: str = "auto",
        confine: Any = None,
        name: str | None = None,
        max_duration: Any = None,
    ) -> None:
        self.bytes, self.percent = _amount("memory_stress", bytes, percent)
        super().__init__(engine=engine, confine=confine, name=name, max_duration=max_duration)
        self.size = 0

    def _prepare(self) -> None:
        super()._prepare()
        import psutil

        total = psutil.virtual_memory().total
        self.size = self.bytes if self.bytes is not None else int(total * (self.percent or 0) / 100)
        if self.size > total:
            raise FaultError(f"faults.memory_stress: bytes={self.size} exceeds the machine's memory ({total} bytes)")

    def _command(self, deadline: float) -> list[str]:
        if self.engine == "stress-ng":
            seconds = max(1, math.ceil(deadline - time.time()))
            return [
                "stress-ng", "--vm", "1", "--vm-bytes", str(self.size), "--vm-keep",
                "--timeout", f"{seconds}s", "--quiet",
            ]  # fmt: skip
        return self._python({"kind": "memory", "bytes": self.size, "deadline": deadline})

    def _configure_cgroup(self, cgroup: _Cgroup) -> None:
        """Limit = what the confined processes use now + the stress: they must compete for it."""
        import psutil

        used = 0
        for proc in self._confined:
            with contextlib.suppress(psutil.Error):
                used += psutil.Process(proc.pid).memory_info().rss
        cgroup.set("memory.limit_in_bytes", used + self.size)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "bytes": self.size or self.bytes, "percent": self.percent}

    def describe(self) -> str:
        amount = f"{self.percent:g}% of memory" if self.percent is not None else f"{self.bytes} bytes"
        return f"memory stress {amount} on {self.target}"


class IoStress(_Stress):
    kind = "io_stress"

    def __init__(
        self,
        workers: int = 1,
        *,
        bytes: int = 64 << 20,
        path: str | os.PathLike[str] | None = None,
        engine: str = "auto",
        name: str | None = None,
        max_duration: Any = None,
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise FaultError(f"faults.io_stress: workers={workers!r} must be a whole number >= 1")
        if isinstance(bytes, bool) or not isinstance(bytes, int) or bytes <= 0:
            raise FaultError(f"faults.io_stress: bytes={bytes!r} must be a whole number of bytes > 0")
        self.workers = workers
        self.bytes = bytes
        self.path = Path(path) if path is not None else Path(tempfile.gettempdir())
        if not self.path.is_dir():
            raise FaultError(f"faults.io_stress: path={str(self.path)!r} is not a directory")
        self.workdir: Path | None = None
        super().__init__(engine=engine, confine=None, name=name, max_duration=max_duration)

    @property
    def lock_key(self) -> str:
        return f"io:{self.path.resolve()}"

    @property
    def target(self) -> str:
        return f"path {self.path}"

    def _prepare(self) -> None:
        self.workdir = self.path / f".resiliency-io-{uuid.uuid4().hex[:10]}"

    def _command(self, deadline: float) -> list[str]:
        assert self.workdir is not None
        self.workdir.mkdir()
        if self.engine == "stress-ng":
            seconds = max(1, math.ceil(deadline - time.time()))
            return [
                "stress-ng", "--hdd", str(self.workers), "--hdd-bytes", str(self.bytes),
                "--temp-path", str(self.workdir), "--timeout", f"{seconds}s", "--quiet",
            ]  # fmt: skip
        spec = {
            "kind": "io",
            "workers": self.workers,
            "bytes": self.bytes,
            "path": str(self.workdir),
            "deadline": deadline,
        }
        return self._python(spec)

    def _revert(self) -> None:
        super()._revert()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _undo_actions(self) -> list[dict[str, Any]]:
        actions = super()._undo_actions()
        if self.workdir is not None:
            actions.append({"op": "rmtree", "path": str(self.workdir)})
        return actions

    def params(self) -> dict[str, Any]:
        return {**super().params(), "workers": self.workers, "bytes": self.bytes, "path": str(self.path)}

    def describe(self) -> str:
        return f"io stress {self.workers} worker(s) x {self.bytes} bytes in {self.path}"


class DiskFill(Fault):
    """Allocate a file so the filesystem of ``path`` has ``bytes`` less free space (or is ``percent`` full)."""

    kind = "disk_fill"
    needs_expiry_helper = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        bytes: int | None = None,
        *,
        percent: float | None = None,
        name: str | None = None,
        max_duration: Any = None,
    ) -> None:
        super().__init__(name=name, max_duration=max_duration)
        self.path = Path(path)
        if not self.path.is_dir():
            raise FaultError(
                f"faults.disk_fill: path={str(path)!r} is not a directory (the fill file is created in it)"
            )
        self.bytes, self.percent = _amount("disk_fill", bytes, percent)
        self.file = self.path / f".resiliency-fill-{uuid.uuid4().hex[:10]}"
        self.size = 0

    @property
    def target(self) -> str:
        return f"path {self.path}"

    @property
    def lock_key(self) -> str:
        return f"disk:{self.path.resolve()}"

    def _prepare(self) -> None:
        usage = shutil.disk_usage(self.path)
        if self.percent is not None:
            self.size = int(usage.total * self.percent / 100) - usage.used
            if self.size <= 0:
                raise FaultError(
                    f"faults.disk_fill: {self.path} is already {100 * usage.used / usage.total:.1f}% full "
                    f"(asked for {self.percent:g}%)"
                )
        else:
            assert self.bytes is not None
            self.size = self.bytes
        if self.size > usage.free:
            raise FaultError(f"faults.disk_fill: {self.size} bytes do not fit in {self.path} ({usage.free} bytes free)")

    def _inject(self) -> None:
        fd = os.open(self.file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.posix_fallocate(fd, 0, self.size)
        finally:
            os.close(fd)

    def _revert(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.file.unlink()

    def _undo_actions(self) -> list[dict[str, Any]]:
        return [{"op": "unlink", "path": str(self.file)}]

    def params(self) -> dict[str, Any]:
        return {**super().params(), "path": str(self.path), "bytes": self.size or self.bytes, "percent": self.percent}

    def describe(self) -> str:
        amount = f"to {self.percent:g}% full" if self.percent is not None else f"with {self.bytes} bytes"
        return f"fill {self.path} {amount}"


def cpu_stress(
    cores: int | None = None,
    load_percent: float = 100,
    *,
    engine: str = "auto",
    confine: Any = None,
    name: str | None = None,
    max_duration: Any = None,
) -> CpuStress:
    """Load ``cores`` CPUs (all by default) at ``load_percent``; ``confine=svc`` shares a cpu quota with svc."""
    return CpuStress(cores, load_percent, engine=engine, confine=confine, name=name, max_duration=max_duration)


def memory_stress(
    bytes: int | None = None,
    *,
    percent: float | None = None,
    engine: str = "auto",
    confine: Any = None,
    name: str | None = None,
    max_duration: Any = None,
) -> MemoryStress:
    """Hold ``bytes`` (or ``percent`` of RAM) resident; ``confine=svc`` shares a memory limit with svc."""
    return MemoryStress(bytes, percent=percent, engine=engine, confine=confine, name=name, max_duration=max_duration)


def io_stress(
    workers: int = 1,
    *,
    bytes: int = 64 << 20,
    path: str | os.PathLike[str] | None = None,
    engine: str = "auto",
    name: str | None = None,
    max_duration: Any = None,
) -> IoStress:
    """Write and sync ``bytes`` per worker in a directory of ``path`` (default the temp dir) in a loop."""
    return IoStress(workers, bytes=bytes, path=path, engine=engine, name=name, max_duration=max_duration)


def disk_fill(
    path: str | os.PathLike[str],
    bytes: int | None = None,
    *,
    percent: float | None = None,
    name: str | None = None,
    max_duration: Any = None,
) -> DiskFill:
    """Take ``bytes`` of free space in ``path``'s filesystem, or fill it up to ``percent`` used."""
    return DiskFill(path, bytes, percent=percent, name=name, max_duration=max_duration)


def process_status(pid: int) -> str | None:
    """Re-exported for tests and probes: the /proc state letter of ``pid``."""
    return status(pid)
