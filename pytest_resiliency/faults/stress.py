"""Resource faults: cpu, memory and io stress, by stress-ng or a pure-Python stressor.

The stressor is a process in its own session that ends by itself at the fault's maximum
duration (``stress-ng --timeout`` or the Python stressor's deadline), so a SIGKILLed pytest
never leaves one running longer. ``confine=svc`` (cpu and memory) shares a cgroup with a
service (:mod:`.cgroups`, v1 or v2) so the stress hits that service instead of the host.
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

import tenacity

from .. import procfs, validate
from ..errors import ConfigError
from ..targets.process import Proc, ProcessSpec
from . import stressor as _stressor
from .base import Fault
from .cgroups import Cgroup, confinement
from .process import process_target, resolve

__all__ = ["CpuStress", "IoStress", "MemoryStress", "cpu_stress", "io_stress", "memory_stress"]

ENGINES = ("auto", "stress-ng", "python")
Size = int | str


def percent(value: object, name: str, low: float = 0.0) -> float:
    """A percentage in ``(low, 100]`` (``low`` itself allowed when it is above 0)."""
    number: float = validate.instance(value, name, (int, float), "a number")
    if not math.isfinite(number) or number < low or number > 100 or (low == 0 and number == 0):
        bound = f"between {low:g} and 100" if low > 0 else "> 0 and <= 100"
        raise ConfigError(f"{name}={validate.shown(value)} is out of range; accepted: {bound}")
    return float(number)


def amount(fault: str, size: object, share: object) -> tuple[int | None, float | None]:
    """Exactly one of a size (bytes, ``"64MB"``) or a percentage."""
    if (size is None) == (share is None):
        raise ConfigError(
            f"faults.{fault}: give exactly one of bytes= or percent= (got bytes={validate.shown(size)}, "
            f"percent={validate.shown(share)})"
        )
    if size is not None:
        return validate.size(size, f"faults.{fault}: bytes", positive=True), None
    return None, percent(share, f"faults.{fault}: percent")


def _engine(fault: str, engine: str) -> str:
    validate.one_of(engine, f"faults.{fault}: engine", ENGINES)
    if engine == "auto":
        return "stress-ng" if shutil.which("stress-ng") else "python"
    if engine == "stress-ng" and not shutil.which("stress-ng"):
        raise ConfigError(f"faults.{fault}: engine='stress-ng' but stress-ng is not installed (apt install stress-ng)")
    return engine


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


class Stress(Fault):
    """A stressor process (stress-ng or the Python fallback) in its own session, ending at its deadline."""

    controller: ClassVar[str | None] = None

    def __init__(
        self, *, engine: str, confine: ProcessSpec | None, name: str | None, max_duration: float | str | None
    ) -> None:
        super().__init__(name=name, max_duration=max_duration)
        self.engine = _engine(self.kind, engine)
        self.confine = None if confine is None else process_target(self.kind, confine)
        if self.confine is not None and self.controller is None:
            raise ConfigError(f"faults.{self.kind}: confine= is supported by cpu_stress and memory_stress only")
        self.proc: subprocess.Popen[bytes] | None = None
        self._start: int | None = None
        self.cgroup: Cgroup | None = None
        self._confined: list[Proc] = []

    @property
    def target(self) -> str:
        return self.confine.label if self.confine is not None else "host"

    def identities(self) -> list[str]:
        return [p.identity for p in self._confined] if self.confine is not None else ["host"]

    def _prepare(self) -> None:
        if self.confine is not None:
            assert self.controller is not None
            self._confined = resolve(self.kind, self.confine)
            self.cgroup = confinement(self.controller, self._confined[0].pid)

    def _command(self, deadline: float) -> list[str]:
        raise NotImplementedError

    def _configure_cgroup(self, cgroup: Cgroup) -> None:
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
        self._start = procfs.start_time(self.proc.pid)

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
            # "Reverted" means gone: wait (at most 3 s) until no process of the group is left.
            with contextlib.suppress(tenacity.RetryError):
                tenacity.Retrying(
                    retry=tenacity.retry_if_result(lambda gone: not gone),
                    stop=tenacity.stop_after_delay(3.0),
                    wait=tenacity.wait_fixed(0.01),
                )(_group_gone, proc.pid)
        if self.cgroup is not None:
            from .undo import run_action

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


def _seconds_left(deadline: float) -> str:
    return f"{max(1, math.ceil(deadline - time.time()))}s"


class CpuStress(Stress):
    """Load ``cores`` CPUs (all by default) at ``load_percent``; ``confine=svc`` shares a cpu quota with svc."""

    kind = "cpu_stress"
    controller = "cpu"

    def __init__(
        self,
        cores: int | None = None,
        load_percent: float = 100,
        *,
        engine: str = "auto",
        confine: ProcessSpec | None = None,
        name: str | None = None,
        max_duration: float | str | None = None,
    ) -> None:
        available = os.cpu_count() or 1
        self.cores = available if cores is None else validate.count(cores, "faults.cpu_stress: cores", minimum=1)
        self.load_percent = percent(load_percent, "faults.cpu_stress: load_percent", low=1)
        super().__init__(engine=engine, confine=confine, name=name, max_duration=max_duration)

    def _command(self, deadline: float) -> list[str]:
        if self.engine == "stress-ng":
            load = f"{self.load_percent:.0f}"
            return ["stress-ng", "--cpu", str(self.cores), "--cpu-load", load, "--timeout", _seconds_left(deadline),
                    "--quiet"]  # fmt: skip
        spec = {"kind": "cpu", "workers": self.cores, "load_percent": self.load_percent, "deadline": deadline}
        return self._python(spec)

    def _configure_cgroup(self, cgroup: Cgroup) -> None:
        cgroup.limit_cpu(self.cores)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "cores": self.cores, "load_percent": self.load_percent}

    def describe(self) -> str:
        return f"cpu stress {self.cores} core(s) at {self.load_percent:g}% on {self.target}"


class MemoryStress(Stress):
    """Hold ``bytes`` (or ``percent`` of RAM) resident; ``confine=svc`` shares a memory limit with svc."""

    kind = "memory_stress"
    controller = "memory"

    def __init__(
        self,
        bytes: Size | None = None,
        *,
        percent: float | None = None,
        engine: str = "auto",
        confine: ProcessSpec | None = None,
        name: str | None = None,
        max_duration: float | str | None = None,
    ) -> None:
        self.bytes, self.percent = amount("memory_stress", bytes, percent)
        super().__init__(engine=engine, confine=confine, name=name, max_duration=max_duration)
        self.size = 0

    def _prepare(self) -> None:
        super()._prepare()
        import psutil

        total = psutil.virtual_memory().total
        self.size = self.bytes if self.bytes is not None else int(total * (self.percent or 0) / 100)
        if self.size > total:
            raise ConfigError(f"faults.memory_stress: bytes={self.size} exceeds the machine's memory ({total} bytes)")

    def _command(self, deadline: float) -> list[str]:
        if self.engine == "stress-ng":
            return [
                "stress-ng", "--vm", "1", "--vm-bytes", str(self.size), "--vm-keep",
                "--timeout", _seconds_left(deadline), "--quiet",
            ]  # fmt: skip
        return self._python({"kind": "memory", "bytes": self.size, "deadline": deadline})

    def _configure_cgroup(self, cgroup: Cgroup) -> None:
        """Limit = what the confined processes use now + the stress: they must compete for it."""
        import psutil

        used = 0
        for proc in self._confined:
            with contextlib.suppress(psutil.Error):
                used += psutil.Process(proc.pid).memory_info().rss
        cgroup.limit_memory(used + self.size)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "bytes": self.size or self.bytes, "percent": self.percent}

    def describe(self) -> str:
        amount = f"{self.percent:g}% of memory" if self.percent is not None else f"{self.bytes} bytes"
        return f"memory stress {amount} on {self.target}"


class IoStress(Stress):
    """Write and sync ``bytes`` per worker in a directory of ``path`` (default the temp dir) in a loop."""

    kind = "io_stress"

    def __init__(
        self,
        workers: int = 1,
        *,
        bytes: Size = 64 << 20,
        path: str | os.PathLike[str] | None = None,
        engine: str = "auto",
        name: str | None = None,
        max_duration: float | str | None = None,
    ) -> None:
        self.workers = validate.count(workers, "faults.io_stress: workers", minimum=1)
        self.bytes = validate.size(bytes, "faults.io_stress: bytes", positive=True)
        self.path = Path(path) if path is not None else Path(tempfile.gettempdir())
        if not self.path.is_dir():
            raise ConfigError(f"faults.io_stress: path={str(self.path)!r} is not a directory")
        self.workdir: Path | None = None
        super().__init__(engine=engine, confine=None, name=name, max_duration=max_duration)

    @property
    def target(self) -> str:
        return f"path {self.path}"

    def identities(self) -> list[str]:
        return [f"io {self.path.resolve()}"]

    def _prepare(self) -> None:
        self.workdir = self.path / f".resiliency-io-{uuid.uuid4().hex[:10]}"

    def _command(self, deadline: float) -> list[str]:
        assert self.workdir is not None
        self.workdir.mkdir()
        if self.engine == "stress-ng":
            return [
                "stress-ng", "--hdd", str(self.workers), "--hdd-bytes", str(self.bytes),
                "--temp-path", str(self.workdir), "--timeout", _seconds_left(deadline), "--quiet",
            ]  # fmt: skip
        spec = {"kind": "io", "workers": self.workers, "bytes": self.bytes, "path": str(self.workdir),
                "deadline": deadline}  # fmt: skip
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


# The faults as users call them (``faults.kill(...)``): the classes themselves, one signature each.
cpu_stress = CpuStress
memory_stress = MemoryStress
io_stress = IoStress
