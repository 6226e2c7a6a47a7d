"""Supervised local services: a command run as a service, restarted by a supervisor process.

A :class:`Service` is a *target*: ``faults.kill(svc)``, ``faults.pause(svc)`` and
``faults.restart(svc)`` act on its current process group, and because the supervisor
restarts it according to its policy, killing it gives a real, measurable recovery.
"Ready" means healthy: :meth:`Service.start` waits (with tenacity) until the health check
passes and fails with the log tail when it never does.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import probes as _probes
from ..budget import BudgetError, parse_duration
from . import supervisor as _supervisor

POLICIES = _supervisor.POLICIES
LOG_TAIL_LINES = 40


class ServiceError(RuntimeError):
    """A service could not be configured, started or made healthy; the message says why."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def check_port_free(port: int, host: str = "127.0.0.1", what: str = "port") -> None:
    """Raise a clear error when ``port`` is invalid or already bound on ``host``."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ServiceError(f"{what} {port!r} must be an integer between 1 and 65535 (or None for a free one)")
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ServiceError(
                    f"{what} {port} is already in use on {host}; pick another or pass None for a free one"
                ) from None
            raise ServiceError(f"{what} {port} on {host} cannot be bound: {exc}") from None


def _duration(value: float | str, name: str) -> float:
    try:
        return parse_duration(value, name)
    except BudgetError as exc:
        raise ServiceError(str(exc)) from None


class Service:
    """A command supervised as a local service. Create it with the ``service`` fixture."""

    def __init__(
        self,
        command: str | Sequence[str],
        *,
        name: str | None = None,
        port: int | None = None,
        health: str | int | _probes.Probe | Callable[[], Any] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        restart: str = "always",
        restart_delay: float | str = 1.0,
        backoff: float = 1.0,
        max_restart_delay: float | str = 30.0,
        max_restarts: int | None = None,
        start_timeout: float | str = 30.0,
        stop_timeout: float | str = 5.0,
        log_dir: str | os.PathLike[str] | None = None,
        netns: str | None = None,
    ) -> None:
        argv = command.split() if isinstance(command, str) else list(command)
        if not argv or not all(isinstance(a, str) for a in argv):
            raise ServiceError(f"service command must be a non-empty string or list of strings, got {command!r}")
        if restart not in POLICIES:
            raise ServiceError(f"restart={restart!r} is not a restart policy; accepted: {', '.join(POLICIES)}")
        if isinstance(backoff, bool) or not isinstance(backoff, (int, float)) or backoff < 1:
            raise ServiceError(f"backoff={backoff!r} must be a number >= 1 (1 = constant restart delay)")
        if max_restarts is not None and (not isinstance(max_restarts, int) or max_restarts < 0):
            raise ServiceError(f"max_restarts={max_restarts!r} must be a whole number >= 0 or None")
        if cwd is not None and not Path(cwd).is_dir():
            raise ServiceError(f"cwd={str(cwd)!r} is not a directory")
        self.name = name or Path(argv[0]).name
        uses_port = any("{port}" in a for a in argv) or (isinstance(health, str) and "{port}" in health)
        if port is None:
            self.port: int | None = free_port() if uses_port else None
        else:
            if netns is None:
                check_port_free(port)
            self.port = port
        fill = {"port": str(self.port or "")}
        self.command = [a.format(**fill) if "{port}" in a else a for a in argv]
        self.env = {k: str(v).format(**fill) for k, v in (env or {}).items()}
        if self.port is not None:
            self.env.setdefault("PORT", str(self.port))
        self.cwd = str(cwd) if cwd is not None else None
        self.restart = restart
        self.restart_delay = _duration(restart_delay, "restart_delay")
        self.backoff = float(backoff)
        self.max_restart_delay = _duration(max_restart_delay, "max_restart_delay")
        self.max_restarts = max_restarts
        self.start_timeout = _duration(start_timeout, "start_timeout")
        self.stop_timeout = _duration(stop_timeout, "stop_timeout")
        self.netns = netns
        self.health = self._health_probe(health)
        directory = Path(log_dir) if log_dir is not None else Path(os.environ.get("TMPDIR", "/tmp"))
        directory.mkdir(parents=True, exist_ok=True)
        self.log_path = directory / f"service-{self.name}-{os.getpid()}-{id(self):x}.log"
        self.events: list[dict[str, Any]] = []
        self._pid: int | None = None
        self._start_ticks: int | None = None
        self._changed = threading.Condition()
        self._supervisor: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def _health_probe(self, health: str | int | _probes.Probe | Callable[[], Any] | None) -> _probes.Probe | None:
        if health is None:
            return None
        if isinstance(health, bool):
            raise ServiceError(f"health={health!r}: use an http:// URL, a TCP port, a probe or a callable")
        if isinstance(health, int):
            return _probes.tcp("127.0.0.1", health, name=f"{self.name} tcp :{health}")
        if isinstance(health, str):
            url = health.format(port=self.port)
            if not url.startswith(("http://", "https://")):
                raise ServiceError(f"health={health!r}: a string health check must be an http:// or https:// URL")
            return _probes.http(url, name=f"{self.name} {url}")
        if callable(health):
            return _probes.as_probe(health)
        raise ServiceError(f"health={health!r}: use an http:// URL, a TCP port, a probe or a callable")

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> Service:
        """Start the supervisor and wait until the service is healthy (or fail with its log tail)."""
        if self._supervisor is not None:
            raise ServiceError(f"service {self.name!r} is already started")
        spec = {
            "command": self.command,
            "env": self.env,
            "cwd": self.cwd,
            "log": str(self.log_path),
            "restart": self.restart,
            "delay": self.restart_delay,
            "backoff": self.backoff,
            "max_delay": self.max_restart_delay,
            "max_restarts": self.max_restarts,
            "stop_timeout": self.stop_timeout,
            "netns": self.netns,
        }
        self._supervisor = subprocess.Popen(
            [sys.executable, "-I", "-S", _supervisor.__file__, json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,  # a Ctrl-C is pytest's to handle; teardown stops us
        )
        self._reader = threading.Thread(target=self._read_events, name=f"service-{self.name}", daemon=True)
        self._reader.start()
        try:
            self.wait_healthy(self.start_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _read_events(self) -> None:
        assert self._supervisor is not None and self._supervisor.stdout is not None
        for line in self._supervisor.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self._changed:
                self.events.append(event)
                if event["event"] == "started":
                    self._pid, self._start_ticks = int(event["pid"]), event.get("start")
                elif event["event"] in ("exited", "stopped"):
                    self._pid = None
                self._changed.notify_all()
        with self._changed:
            self._pid = None
            self.events.append({"event": "supervisor-exited", "at": time.time()})
            self._changed.notify_all()

    def wait_healthy(self, timeout: float | str | None = None) -> None:
        """Block until the health check passes; a clear error with the log tail when it does not."""
        from tenacity import RetryError, Retrying, retry_if_not_exception_type, stop_after_delay, wait_fixed

        seconds = self.start_timeout if timeout is None else _duration(timeout, "timeout")

        def check() -> None:
            if self.gave_up:
                raise _GaveUp(self._last_exit())
            if self.pid is None:
                raise ServiceError("not running")
            if self.health is not None:
                self.health()

        try:
            for attempt in Retrying(
                stop=stop_after_delay(seconds),
                wait=wait_fixed(0.02),
                retry=retry_if_not_exception_type(_GaveUp),
                reraise=False,
            ):
                with attempt:
                    check()
        except _GaveUp as exc:
            raise ServiceError(
                f"service {self.name!r} exited ({exc}) and will not restart; log tail:\n{self.log_tail()}"
            ) from None
        except RetryError as exc:
            last = exc.last_attempt.exception()
            what = "its health check" if self.health is not None else "its process"
            raise ServiceError(
                f"service {self.name!r} did not become healthy within {seconds:g}s "
                f"({what}: {type(last).__name__}: {last}); command {self.command}; log tail:\n{self.log_tail()}"
            ) from None

    def _last_exit(self) -> str:
        exits = [e for e in self.events if e["event"] == "exited"]
        return f"exit code {exits[-1]['code']}" if exits else "no exit seen"

    def stop(self) -> None:
        """Stop the service's whole process group and the supervisor. Safe to call twice."""
        sup, self._supervisor = self._supervisor, None
        if sup is None:
            return
        with contextlib.suppress(BrokenPipeError, OSError, ValueError):
            assert sup.stdin is not None
            sup.stdin.write("stop\n")
            sup.stdin.flush()
            sup.stdin.close()
        try:
            sup.wait(timeout=self.stop_timeout + 5)
        except subprocess.TimeoutExpired:
            sup.kill()
            sup.wait()
            pid = self._pid
            if pid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, 9)
        if self._reader is not None:
            self._reader.join(timeout=5)
        if sup.stdout is not None:
            sup.stdout.close()

    def restart_now(self) -> None:
        """Ask the supervisor to stop the service (SIGTERM, then SIGKILL) and start it again at once."""
        sup = self._supervisor
        if sup is None or sup.stdin is None:
            raise ServiceError(f"service {self.name!r} is not running")
        sup.stdin.write("restart\n")
        sup.stdin.flush()

    # -- state -------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The pid (and process-group id) of the running service, ``None`` between restarts."""
        with self._changed:
            return self._pid

    @property
    def start_ticks(self) -> int | None:
        with self._changed:
            return self._start_ticks

    @property
    def process(self) -> Service:
        """The fault target: faults accept the service itself and act on its current process group."""
        return self

    @property
    def url(self) -> str:
        if self.port is None:
            raise ServiceError(f"service {self.name!r} has no port; pass port= or use {{port}} in the command")
        return f"http://127.0.0.1:{self.port}"

    @property
    def restarts(self) -> int:
        return sum(1 for e in self.events if e["event"] == "started") - 1 if self.events else 0

    @property
    def gave_up(self) -> bool:
        with self._changed:
            return any(e["event"] in ("gave-up", "supervisor-exited") for e in self.events)

    @property
    def running(self) -> bool:
        return self.pid is not None

    def healthy(self) -> bool:
        if self.pid is None:
            return False
        if self.health is None:
            return True
        return _probes.run_once(self.health)[2]

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait for a supervisor event that makes ``predicate()`` true (event-driven, bounded)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the service's log (stdout and stderr), for reports."""
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - 64 * 1024))
                text = handle.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __repr__(self) -> str:
        return f"<Service {self.name} pid={self.pid} port={self.port} restart={self.restart}>"


class _GaveUp(Exception):
    """The service exited and its policy says it stays down: waiting longer is pointless."""
