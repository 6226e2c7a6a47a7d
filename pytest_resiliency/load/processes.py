"""The locust processes of one load run: spawned in their own sessions, stopped exactly, all reaped.

Locust processes are forked from a per-pytest-process :mod:`.zygote` that imported locust
once (~0.65 s saved per start); a locust process still loads the locustfiles fresh. When the
zygote cannot start, or forking is off (``--resiliency-load-fork=off``,
``RESILIENCY_LOAD_FORK=0``), a process is a plain subprocess ``python -m locust ...``.

Each process (the master or single process, and local workers) runs in its own session, so
that Ctrl-C in the terminal reaches pytest only and stopping is exact: SIGTERM, a grace
period, then SIGKILL of the whole process group, and every child reaped. Processes still
running when the interpreter exits are stopped then.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import weakref
from pathlib import Path
from typing import Protocol

from ..host import tail_text
from .records import EVENTS_ENV, PARENT_ENV


class LocustProcess(Protocol):
    """What :class:`LocustProcesses` needs of a process: a :class:`subprocess.Popen` or a zygote's child."""

    pid: int
    returncode: int | None

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def send_signal(self, sig: int) -> None: ...


DEFAULT_GRACE = 10.0
LOG_TAIL_LINES = 25

_running: weakref.WeakSet[LocustProcesses] = weakref.WeakSet()


def _stop_all_at_exit() -> None:
    for processes in list(_running):
        processes.stop(grace=2.0)
    from . import forkserver

    forkserver.close()


atexit.register(_stop_all_at_exit)


def base_environment() -> dict[str, str]:
    """This process's environment with this package importable (the zygote's, before any run)."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    paths = [package_root, os.getcwd(), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def locust_environment(events_path: Path) -> dict[str, str]:
    """The environment of every locust process: this package importable, the sink's file, pytest's pid."""
    env = base_environment()
    env[EVENTS_ENV] = str(events_path)
    env[PARENT_ENV] = str(os.getpid())  # the sink's watchdog ends the run when pytest is gone
    env["PYTHONUNBUFFERED"] = "1"
    return env


class LocustProcesses:
    """The master (or single) process first, then local workers; each logs to ``locust-<role>.log``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.roles: list[str] = []
        self.procs: list[LocustProcess] = []
        self.logs: list[Path] = []
        self._stopped = False

    def spawn(self, command: list[str], role: str, env: dict[str, str]) -> LocustProcess:
        """Fork it from the zygote if forking is on and the zygote answers, else start a subprocess."""
        from . import forkserver

        log = self.workdir / f"locust-{role}.log"
        proc: LocustProcess | None = None
        note = ""
        if forkserver.enabled():
            proc, note = forkserver.spawn(command, env, self.workdir, log)
        if proc is None:
            proc = self._subprocess(command, env, log, note)
        self.roles.append(role)
        self.procs.append(proc)
        self.logs.append(log)
        _running.add(self)
        return proc

    def _subprocess(self, command: list[str], env: dict[str, str], log: Path, note: str) -> LocustProcess:
        with log.open("wb") as out:
            if note:  # why this one was not forked, first in its log
                out.write(f"pytest-resiliency: {note}; started as a subprocess\n".encode())
                out.flush()
            return subprocess.Popen(
                command,
                cwd=self.workdir,  # no stray locust.conf of the caller's directory applies
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal reaches pytest, which stops us
            )

    @property
    def master(self) -> LocustProcess | None:
        return self.procs[0] if self.procs else None

    @property
    def workers(self) -> list[LocustProcess]:
        return self.procs[1:]

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    @property
    def running(self) -> bool:
        """The master is alive and :meth:`stop` was not called."""
        master = self.master
        return master is not None and master.poll() is None and not self._stopped

    def exited(self) -> tuple[str, LocustProcess, int] | None:
        """The first process that ended on its own: ``(role, process, exit code)``."""
        for role, proc in zip(self.roles, self.procs, strict=True):
            code = proc.poll()
            if code is not None:
                return role, proc, code
        return None

    def stop(self, grace: float = DEFAULT_GRACE) -> None:
        """SIGTERM the master (it tells its workers to quit), then every process; SIGKILL after ``grace``.

        Idempotent. Returns once every process is reaped.
        """
        if self._stopped:
            return
        self._stopped = True
        master = self.master
        if master is not None and master.poll() is None:
            _signal(master, signal.SIGTERM)
            _wait(master, grace)
        for proc in self.procs:  # workers quit when the master tells them; make sure of it
            if proc.poll() is None:
                _signal(proc, signal.SIGTERM)
        for proc in self.procs:
            _wait(proc, grace)
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        _running.discard(self)

    def log_tail(self) -> str:
        """The last lines of every process's output, for an error message."""
        parts = []
        for log in self.logs:
            text = tail_text(log, LOG_TAIL_LINES)
            if text:
                parts.append(f"--- {log.name} (last lines) ---\n{text}")
        return "\n".join(parts) or "(locust wrote nothing)"


def _signal(proc: LocustProcess, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)


def _wait(proc: LocustProcess, seconds: float) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=seconds)
