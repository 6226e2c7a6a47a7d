"""The pytest side of the locust :mod:`.zygote`: start it lazily, ask it to fork, follow its children.

One zygote per pytest process (per xdist worker), started on the first local locust spawn
with the environment of that load run. A forked child is a :class:`ZygoteChild`, which
behaves like :class:`subprocess.Popen` for :class:`.processes.LocustProcesses`: its
``wait`` waits for the zygote's ``exited`` report. Nothing here imports locust.

Forking is on unless ``--resiliency-load-fork=off`` or ``RESILIENCY_LOAD_FORK=0``; a zygote
that cannot start or answer makes :func:`spawn` return ``None`` with the reason, and the
caller starts a subprocess as before.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

FORK_ENV = "RESILIENCY_LOAD_FORK"
ON = ("1", "on", "true", "yes")
OFF = ("0", "off", "false", "no")
READY_TIMEOUT = 60.0  # seconds: importing locust takes ~0.65 s on an idle machine
ANSWER_TIMEOUT = 10.0  # seconds: a fork is milliseconds
ORPHAN_POLL = 0.05  # seconds: how often a child of a dead zygote is checked
ZYGOTE_MODULE = "pytest_resiliency.load.zygote"
UNKNOWN_EXIT = 255  # the exit code of a child whose zygote died before reporting it

_option: bool | None = None  # --resiliency-load-fork, when given; it wins over the environment
_zygote: Zygote | None = None
_broken: str | None = None  # why the zygote could not start; not retried in this process
_lock = threading.Lock()  # the zygote's children, shared with its reader thread
_spawn_lock = threading.Lock()  # one spawn at a time: requests and answers pair up in order


def configure(on: bool) -> None:
    """Set by ``--resiliency-load-fork``."""
    global _option
    _option = on


def enabled() -> bool:
    """``--resiliency-load-fork`` if given, else ``RESILIENCY_LOAD_FORK`` (default on)."""
    if _option is not None:
        return _option
    value = os.environ.get(FORK_ENV, "1").strip().lower()
    if value not in ON + OFF:
        from .errors import LoadConfigError

        raise LoadConfigError(f"{FORK_ENV}={os.environ[FORK_ENV]!r} is not accepted; use one of {', '.join(ON + OFF)}")
    return value in ON


class ZygoteChild:
    """A locust process forked by the zygote: ``pid``, ``poll()``, ``wait()``, ``send_signal()``, like Popen."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._done = threading.Event()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired(f"locust (pid {self.pid})", timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:  # once reaped, the pid may be someone else's
            os.kill(self.pid, sig)

    def _exited(self, code: int) -> None:
        self.returncode = code
        self._done.set()

    def _orphaned(self) -> None:
        """The zygote died: nobody reports this child's exit; notice it by its pid disappearing."""

        def watch() -> None:
            while _running(self.pid):
                time.sleep(ORPHAN_POLL)
            self._exited(UNKNOWN_EXIT)

        threading.Thread(target=watch, name=f"resiliency-orphan-{self.pid}", daemon=True).start()

    def __repr__(self) -> str:
        return f"<ZygoteChild pid={self.pid} returncode={self.returncode}>"


def _running(pid: int) -> bool:
    """Neither gone nor a zombie (an orphan's zombie lasts until pid 1 reaps it, if it ever does)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] not in ("Z", "X")


class Zygote:
    """A running zygote process: one request at a time, answers read by a thread."""

    def __init__(self, env: dict[str, str]) -> None:
        self.owner = os.getpid()
        self.stderr: IO[bytes] = tempfile.TemporaryFile(prefix="resiliency-zygote-")  # noqa: SIM115 - lives as long as the zygote
        self.proc = subprocess.Popen(
            # -P: no directory of ours at the front of sys.path (a child puts its own cwd there)
            [sys.executable, "-P", "-m", ZYGOTE_MODULE],
            cwd=tempfile.gettempdir(),
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            start_new_session=True,  # Ctrl-C in the terminal reaches pytest only
        )
        self.children: dict[int, ZygoteChild] = {}
        self.answers: queue.Queue[tuple[str, ZygoteChild | None] | None] = queue.Queue()
        self.ready = False
        self.dead = False
        self._reader = threading.Thread(target=self._read, name="resiliency-zygote", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            what, _, rest = raw.decode(errors="replace").strip().partition(" ")
            if what == "exited":
                pid, code = (int(x) for x in rest.split())
                with _lock:
                    child = self.children.pop(pid, None)
                if child is not None:
                    child._exited(code)
                continue
            child = None
            if what == "spawned":  # registered here, before any `exited` of it can be read
                child = ZygoteChild(int(rest))
                with _lock:
                    self.children[child.pid] = child
            self.answers.put((raw.decode(errors="replace").strip(), child))
        self.dead = True
        with _lock:
            orphans, self.children = list(self.children.values()), {}
        for child in orphans:
            child._orphaned()
        self.answers.put(None)

    def _answer(self, timeout: float) -> tuple[str, ZygoteChild | None]:
        try:
            answer = self.answers.get(timeout=timeout)
        except queue.Empty:
            raise OSError(f"the locust zygote did not answer within {timeout:g}s") from None
        if answer is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
            raise OSError(f"the locust zygote exited with code {self.proc.returncode}{self._stderr_tail()}")
        return answer

    def _stderr_tail(self) -> str:
        with contextlib.suppress(OSError):
            self.stderr.seek(0)
            text = self.stderr.read()[-2000:].decode(errors="replace").strip()
            if text:
                return f": {text}"
        return ""

    def spawn(self, argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> ZygoteChild:
        """Fork one locust process; raises OSError when the zygote cannot."""
        if self.dead:
            raise OSError("the locust zygote is gone")
        # The CPUs pytest may use *now*: a subprocess would inherit them, the zygote has those of its start.
        request = {"argv": argv, "env": env, "cwd": str(cwd), "log": str(log), "cpus": sorted(os.sched_getaffinity(0))}
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()
        if not self.ready:
            answer, _ = self._answer(READY_TIMEOUT)
            if answer != "ready":
                raise OSError(f"the locust zygote said {answer!r} instead of 'ready'")
            self.ready = True
        answer, child = self._answer(ANSWER_TIMEOUT)
        if child is None:
            raise OSError(f"the locust zygote could not fork: {answer}")
        return child

    def close(self) -> None:
        """Close its stdin (it exits; its children run on) and reap it."""
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=5)  # it reads to the end, then hands its children over as orphans
        if self.proc.stdout is not None and not self._reader.is_alive():
            self.proc.stdout.close()
        self.stderr.close()
        while True:  # a child forked after spawn() gave up waiting for it: nobody would stop it
            try:
                answer = self.answers.get_nowait()
            except queue.Empty:
                break
            if answer is not None and answer[1] is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(answer[1].pid, signal.SIGKILL)


def locust_argv(command: list[str]) -> list[str] | None:
    """``[python, -m, locust, ARGS...]`` as locust's ``sys.argv``; None for any other command."""
    if len(command) >= 3 and command[0] == sys.executable and command[1:3] == ["-m", "locust"]:
        return ["locust", *command[3:]]
    return None


def spawn(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> tuple[ZygoteChild | None, str]:
    """Fork ``command`` from this process's zygote: ``(child, "")``, or ``(None, why not)``."""
    global _zygote, _broken
    argv = locust_argv(command)
    if argv is None:
        return None, "not a `python -m locust` command"
    with _spawn_lock:
        reason = ""
        for _ in range(2):  # a zygote that was up but died under us is replaced once
            if _broken is not None:
                return None, _broken
            zygote = _zygote
            if zygote is not None and (zygote.dead or zygote.owner != os.getpid()):
                if zygote.owner == os.getpid():
                    zygote.close()
                zygote = _zygote = None  # died (or we are a fork of its owner): start a fresh one
            fresh = zygote is None
            try:
                if zygote is None:
                    zygote = _zygote = Zygote(env)
                return zygote.spawn(argv, env, cwd, log), ""
            except (OSError, ValueError, subprocess.SubprocessError) as exc:
                reason = f"the locust zygote failed ({exc})"
                if _zygote is not None:
                    _zygote.close()
                    _zygote = None
                if fresh:
                    _broken = reason  # it cannot start here: do not pay its timeout on every spawn
        return None, reason


def prestart(env: dict[str, str]) -> None:
    """Start the zygote now, without waiting for it: it imports locust while the first test sets up.

    Called once a session has collected a test that uses ``load``; the first ``load()`` then
    forks at once instead of waiting ~0.7 s for locust's imports. Does nothing when forking
    is off, a zygote runs already, or one could not start before.
    """
    global _zygote, _broken
    if not enabled():
        return
    with _spawn_lock:
        if _broken is not None or _ours(_zygote):
            return
        try:
            _zygote = Zygote(env)
        except (OSError, subprocess.SubprocessError) as exc:
            _broken = f"the locust zygote failed ({exc})"


def zygote_pid() -> int | None:
    """The pid of this process's zygote, if one is running."""
    zygote = _zygote
    return zygote.proc.pid if zygote is not None and _ours(zygote) else None


def _ours(zygote: Zygote | None) -> bool:
    """A zygote that runs and was started by this process (not inherited through a fork of it)."""
    return zygote is not None and not zygote.dead and zygote.owner == os.getpid()


def reset() -> None:
    """End the zygote and forget a failure to start one: the next spawn tries afresh."""
    global _broken
    with _spawn_lock:
        close()
        _broken = None


def close() -> None:
    """End this process's zygote (at interpreter exit, after every load run was stopped)."""
    global _zygote
    zygote, _zygote = _zygote, None
    if zygote is not None and zygote.owner == os.getpid():
        zygote.close()
