"""Process faults: kill, pause, restart a service (its current process group), a pid or a name.

The target is resolved just before the fault acts, and every process it resolves to is
claimed by its real identity (pid and start time), so one process addressed two ways — a
service and its pid, a pid and a process name — is never faulted twice at once.
"""

from __future__ import annotations

import contextlib
import os
import signal as _signal
import subprocess
from typing import Any

import tenacity

from .. import procfs, validate
from ..errors import ConfigError, FaultError
from ..targets.process import Proc, ProcessSpec, ProcessTarget, TargetError
from .base import Fault

__all__ = ["Kill", "Pause", "Restart", "kill", "pause", "restart"]

SignalSpec = _signal.Signals | int | str


def process_target(fault: str, spec: Any) -> ProcessTarget:
    """The target of a process fault; a bad one is a :class:`ConfigError` naming the fault."""
    try:
        return ProcessTarget(spec)
    except TargetError as exc:
        raise ConfigError(f"faults.{fault}: {exc}") from None


def resolve(fault: str, target: ProcessTarget) -> list[Proc]:
    """The live processes of ``target`` now; none is a :class:`FaultError` naming it."""
    try:
        return target.resolve()
    except TargetError as exc:
        raise FaultError(f"faults.{fault}: {exc}") from None


def _signal_of(value: object) -> _signal.Signals:
    try:
        if isinstance(value, str):
            name = value.upper()
            return _signal.Signals[name if name.startswith("SIG") else "SIG" + name]
        if isinstance(value, int) and not isinstance(value, bool):
            return _signal.Signals(value)
    except (KeyError, ValueError):
        pass
    raise ConfigError(
        f"faults.kill: signal={validate.shown(value)} is not a signal; use e.g. signal.SIGKILL, 9 or 'SIGTERM'"
    )


def _send(procs: list[Proc], signum: int, group: bool) -> list[int]:
    sent = []
    for proc in procs:
        if procfs.start_time(proc.pid) != proc.start:
            continue  # it is gone (or the pid was reused): never signal a stranger
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(proc.pid, signum)
            else:
                os.kill(proc.pid, signum)
            sent.append(proc.pid)
    return sent


class ProcessFault(Fault):
    """Shared by kill, pause and restart: a process target resolved just before acting."""

    def __init__(
        self, process: ProcessSpec, *, name: str | None = None, max_duration: float | str | None = None
    ) -> None:
        super().__init__(name=name, max_duration=max_duration)
        self.process = process_target(self.kind, process)
        self.procs: list[Proc] = []

    @property
    def target(self) -> str:
        return self.process.label

    def identities(self) -> list[str]:
        return [p.identity for p in self.procs]

    def _prepare(self) -> None:
        self.procs = resolve(self.kind, self.process)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "pids": [p.pid for p in self.procs]}


class Kill(ProcessFault):
    """Send a signal (SIGKILL by default) to the target; a supervised service comes back by itself."""

    kind = "kill"
    instant = True

    def __init__(
        self,
        process: ProcessSpec,
        signal: SignalSpec = _signal.SIGKILL,
        *,
        name: str | None = None,
        max_duration: float | str | None = None,
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


def _stopped(procs: list[Proc]) -> bool:
    return all(procfs.state(p.pid) in ("T", "Z", None) for p in procs)


class Pause(ProcessFault):
    """SIGSTOP the target until revert (SIGCONT): the "stuck worker node" that holds connections."""

    kind = "pause"
    needs_expiry_helper = True

    def _inject(self) -> None:
        if not _send(self.procs, _signal.SIGSTOP, self.process.is_service):
            raise FaultError(f"faults.pause: {self.target} exited before it could be paused")
        # The kernel stops a running task at its next tick: wait until /proc says so, at most 1 s.
        with contextlib.suppress(tenacity.RetryError):
            tenacity.Retrying(
                retry=tenacity.retry_if_result(lambda stopped: not stopped),
                stop=tenacity.stop_after_delay(1.0),
                wait=tenacity.wait_fixed(0.001),
            )(_stopped, self.procs)

    def _revert(self) -> None:
        _send(self.procs, _signal.SIGCONT, self.process.is_service)

    def _undo_actions(self) -> list[dict[str, Any]]:
        op = "signal_group" if self.process.is_service else "signal"
        return [{"op": op, "pid": p.pid, "start": p.start, "signal": int(_signal.SIGCONT)} for p in self.procs]

    def describe(self) -> str:
        return f"pause {self.target}"


class Restart(ProcessFault):
    """Stop the target (SIGTERM, SIGKILL after ``grace``) and start it again at once.

    A service is restarted by its supervisor. A bare pid or name is relaunched with the same
    command line, working directory and environment, detached (it is no child of pytest).
    """

    kind = "restart"
    instant = True

    def __init__(
        self,
        process: ProcessSpec,
        *,
        grace: float | str = 5.0,
        name: str | None = None,
        max_duration: float | str | None = None,
    ) -> None:
        super().__init__(process, name=name, max_duration=max_duration)
        self.grace = validate.duration(grace, "faults.restart: grace")
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


# The faults as users call them (``faults.kill(...)``): the classes themselves, one signature each.
kill = Kill
pause = Pause
restart = Restart
