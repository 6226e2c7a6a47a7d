"""Supervised local services: a command run as a service, restarted by a supervisor process.

A :class:`Service` is a *target*: ``faults.kill(svc)``, ``faults.pause(svc)`` and
``faults.restart(svc)`` act on its current process group, and because the supervisor
restarts it according to its policy, killing it gives a real, measurable recovery.
"Ready" means healthy: :meth:`Service.start` waits (with tenacity) until the readiness check
passes and fails with the log tail when it never does. An open port is not readiness for a
real server (PostgreSQL accepts connections while "the database system is starting up"), so
``ready=`` takes any probe or callable — a real query. Several services that only become
ready together (a quorum cluster) start as a :class:`ServiceGroup`.

Placeholders, expanded everywhere (command, env, health, ready URLs, files): ``{port}`` and
``{port:NAME}`` for the named extra ports of ``ports=``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pwd
import re
import shlex
import signal as _signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypedDict

from .. import probes as _probes
from .. import waiting
from ..errors import ConfigError, TargetError
from ..host import free_port as free_port  # re-exported: it was defined here
from ..host import tail_text
from ..validate import count, duration, one_of
from ..validate import port as valid_port
from . import supervisor as _supervisor

POLICIES = _supervisor.POLICIES
LOG_TAIL_LINES = 40
LOG_POLL = 0.01  # seconds between looks at a log file while waiting for a line (files have no event)
_PLACEHOLDER = re.compile(r"\{port(?::([A-Za-z_][A-Za-z0-9_-]*))?\}")
_PORT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
Check = str | int | _probes.Probe | Callable[[], Any]


class Named(Protocol):
    """Anything with a ``name``: a network namespace object is accepted where its name is."""

    @property
    def name(self) -> str: ...


class PassThroughOptions(TypedDict, total=False):
    """The :class:`Service` keywords a datastore target passes on to its service unchanged."""

    log_tail: int
    env: Mapping[str, str] | None
    cwd: str | os.PathLike[str] | None
    restart: str
    backoff: float
    max_restart_delay: float | str
    max_restarts: int | None
    start_timeout: float | str
    stop_timeout: float | str
    log_dir: str | os.PathLike[str] | None
    netns: str | Named | None


class ServiceOptions(PassThroughOptions, total=False):
    """Every keyword of :class:`Service` (the ``service`` fixture takes them after the command)."""

    name: str | None
    port: int | None
    health: Check | None
    ready: Check | None
    ports: Mapping[str, int | None] | Sequence[str] | None
    user: str | int | None
    files: Mapping[str | os.PathLike[str], str] | None
    stop_signal: int | str
    restart_delay: float | str


class ServiceError(TargetError):
    """A service could not be configured, started or made healthy; the message says why."""


def check_port_free(port: int, host: str = "127.0.0.1", what: str = "port") -> None:
    """Raise a clear error when ``port`` is invalid or already bound on ``host``."""
    port = valid_port(port, what)
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
    return duration(value, name)


@dataclass(frozen=True)
class Account:
    """The unprivileged account a service runs as (``user=``)."""

    name: str
    uid: int
    gid: int
    home: str


def resolve_user(user: str | int) -> Account:
    """Look ``user`` (a name or a uid) up; a clear error when it does not exist or we cannot switch to it."""
    try:
        entry = pwd.getpwuid(user) if isinstance(user, int) and not isinstance(user, bool) else pwd.getpwnam(str(user))
    except (KeyError, TypeError):
        raise ConfigError(f"user={user!r} is not an account on this machine (a user name or a numeric uid)") from None
    if os.geteuid() != 0 and entry.pw_uid != os.geteuid():
        raise ServiceError(
            f"user={user!r}: dropping privileges to another account needs root (we are uid {os.geteuid()})"
        )
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir or "/")


def give_to(path: str | os.PathLike[str], account: Account | None) -> None:
    """Make ``path`` (recursively) owned by ``account`` so a service that dropped privileges can use it."""
    if account is None or os.geteuid() != 0:
        return
    root = Path(path)
    os.chown(root, account.uid, account.gid)
    if root.is_dir():
        for item in root.rglob("*"):
            os.chown(item, account.uid, account.gid, follow_symlinks=False)


@dataclass(frozen=True)
class LogLine:
    """One line of a service's log, with the time we saw it and where it ends in the file."""

    text: str
    seen_at: float
    offset: int


class Service:
    """A command supervised as a local service. Create it with the ``service`` fixture."""

    def __init__(
        self,
        command: str | Sequence[str],
        *,
        name: str | None = None,
        port: int | None = None,
        health: Check | None = None,
        ready: Check | None = None,
        ports: Mapping[str, int | None] | Sequence[str] | None = None,
        user: str | int | None = None,
        files: Mapping[str | os.PathLike[str], str] | None = None,
        log_tail: int = LOG_TAIL_LINES,
        stop_signal: int | str = "SIGTERM",
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
        try:  # a string is split like a shell would (quotes kept together), never run by one
            argv = shlex.split(command) if isinstance(command, str) else list(command)
        except ValueError as exc:
            raise ConfigError(f"service command {command!r} cannot be split into arguments: {exc}") from None
        if not argv or not all(isinstance(a, str) for a in argv):
            raise ConfigError(f"service command must be a non-empty string or list of strings, got {command!r}")
        one_of(restart, "restart", POLICIES)
        if isinstance(backoff, bool) or not isinstance(backoff, (int, float)) or backoff < 1:
            raise ConfigError(f"backoff={backoff!r} must be a number >= 1 (1 = constant restart delay)")
        if max_restarts is not None:
            count(max_restarts, "max_restarts", 0)
        if cwd is not None and not Path(cwd).is_dir():
            raise ConfigError(f"cwd={str(cwd)!r} is not a directory")
        self.name = name or Path(argv[0]).name
        self.log_tail_lines = count(log_tail, "log_tail", 1)
        self.stop_signal = _signal_number(stop_signal)
        self.account = resolve_user(user) if user is not None else None
        templates = [*argv, *(str(v) for v in (env or {}).values()), *(files or {}).values()]
        templates += [c for c in (health, ready) if isinstance(c, str)]
        used = {m.group(1) for t in templates for m in _PLACEHOLDER.finditer(t)}
        if port is None:
            self.port: int | None = free_port() if None in used else None
        else:
            if netns is None:
                check_port_free(port)
            self.port = port
        self.ports: dict[str, int] = self._named_ports(ports, netns)
        unknown = sorted(n for n in used if n is not None and n not in self.ports)
        if unknown:
            raise ConfigError(
                f"{{port:{unknown[0]}}} names no port of service {self.name!r}; "
                f"declare it with ports=[{unknown[0]!r}] (declared: {sorted(self.ports) or 'none'})"
            )
        self.command = [self.expand(a) for a in argv]
        self.env = {k: self.expand(str(v)) for k, v in (env or {}).items()}
        if self.port is not None:
            self.env.setdefault("PORT", str(self.port))
        self.files = {Path(path): self.expand(text) for path, text in (files or {}).items()}
        self.cwd = str(cwd) if cwd is not None else None
        self.restart = restart
        self.restart_delay = _duration(restart_delay, "restart_delay")
        self.backoff = float(backoff)
        self.max_restart_delay = _duration(max_restart_delay, "max_restart_delay")
        self.max_restarts = max_restarts
        self.start_timeout = _duration(start_timeout, "start_timeout")
        self.stop_timeout = _duration(stop_timeout, "stop_timeout")
        self.netns = netns
        self.health = self._health_probe(health, "health")
        self.ready = self._health_probe(ready, "ready") if ready is not None else self.health
        directory = Path(log_dir) if log_dir is not None else Path(os.environ.get("TMPDIR", "/tmp"))
        directory.mkdir(parents=True, exist_ok=True)
        self.log_path = directory / f"service-{self.name}-{os.getpid()}-{id(self):x}.log"
        self.events: list[dict[str, Any]] = []
        self._pid: int | None = None
        self._start_ticks: int | None = None
        self._changed = threading.Condition()
        self._supervisor: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def _named_ports(self, ports: Mapping[str, int | None] | Sequence[str] | None, netns: str | None) -> dict[str, int]:
        if ports is None:
            return {}
        if isinstance(ports, str):
            raise ConfigError(f"ports={ports!r} must be a list of names or a mapping of name to port (or None)")
        wanted: Mapping[str, int | None] = ports if isinstance(ports, Mapping) else dict.fromkeys(ports)
        chosen: dict[str, int] = {}
        for key, number in wanted.items():
            if not isinstance(key, str) or not _PORT_NAME.match(key):
                raise ConfigError(
                    f"ports: name {key!r} must be a word (letters, digits, _ and -), used as {{port:NAME}}"
                )
            if number is None:
                chosen[key] = free_port()
            else:
                if netns is None:
                    check_port_free(number, what=f"port {key!r}")
                chosen[key] = number
        return chosen

    def expand(self, text: str) -> str:
        """Replace ``{port}`` and ``{port:NAME}`` in ``text`` (other braces are left alone)."""

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name is None:
                return str(self.port or "")
            if name not in self.ports:
                raise ConfigError(f"{{port:{name}}} names no port of service {self.name!r}; declare it with ports=")
            return str(self.ports[name])

        return _PLACEHOLDER.sub(one, text)

    def _health_probe(self, check: Check | None, what: str) -> _probes.Probe | None:
        accepted = "an http:// URL, tcp://HOST:PORT, a TCP port number, a probe or a callable"
        if check is None:
            return None
        if isinstance(check, bool):
            raise ConfigError(f"{what}={check!r}: use {accepted}")
        if isinstance(check, int):
            return _probes.tcp("127.0.0.1", check, name=f"{self.name} tcp :{check}")
        if isinstance(check, str):
            url = self.expand(check)
            if url.startswith(("http://", "https://")):
                return _probes.http(url, name=f"{self.name} {url}")
            found = re.fullmatch(r"tcp://([^:/]+):(\d+)/?", url)
            if found:
                return _probes.tcp(found.group(1), int(found.group(2)), name=f"{self.name} {url}")
            raise ConfigError(f"{what}={check!r}: a string check must be an http(s):// URL or tcp://HOST:PORT")
        if callable(check):
            return _probes.as_probe(check)
        raise ConfigError(f"{what}={check!r}: use {accepted}")

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> Service:
        """Start the supervisor and wait until the service is ready (or fail with its log tail)."""
        self.launch()
        try:
            self.wait_ready(self.start_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def launch(self) -> Service:
        """Start the supervisor (and the command) without waiting for readiness: a group waits for all."""
        if self._supervisor is not None:
            raise ServiceError(f"service {self.name!r} is already started")
        for path, text in self.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            give_to(path, self.account)
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
            "stop_signal": self.stop_signal,
            "user": None if self.account is None else [self.account.uid, self.account.gid, self.account.home],
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
        self._wait_check(self.health, "its health check", timeout)

    def wait_ready(self, timeout: float | str | None = None) -> None:
        """Block until the readiness check (``ready=``, else ``health=``) passes, or fail with the log tail."""
        self._wait_check(self.ready, "its readiness check", timeout)

    def _wait_check(self, probe: _probes.Probe | None, label: str, timeout: float | str | None) -> None:
        from tenacity import RetryError, Retrying, retry_if_not_exception_type, stop_after_delay, wait_fixed

        seconds = self.start_timeout if timeout is None else _duration(timeout, "timeout")

        def check() -> None:
            if self.gave_up:
                raise _GaveUp(self._last_exit())
            if self.pid is None:
                raise ServiceError("not running")
            if probe is not None:
                probe()

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
            what = label if probe is not None else "its process"
            state = "healthy" if probe is self.health else "ready"
            raise ServiceError(
                f"service {self.name!r} did not become {state} within {seconds:g}s "
                f"({what}: {type(last).__name__}: {last}); command {self.command}; log tail:\n{self.log_tail()}"
            ) from None

    def _last_exit(self) -> str:
        errors = [e["error"] for e in self.events if e["event"] == "gave-up" and e.get("error")]
        if errors:
            return str(errors[-1])
        exits = [e for e in self.events if e["event"] == "exited"]
        return f"exit code {exits[-1]['code']}" if exits else "no exit seen"

    def stop(self) -> None:
        """Stop the service's whole process group and the supervisor. Safe to call twice."""
        sup, self._supervisor = self._supervisor, None
        if sup is None:
            return
        assert sup.stdin is not None
        with contextlib.suppress(BrokenPipeError, OSError, ValueError):
            sup.stdin.write("stop\n")
            sup.stdin.flush()
        with contextlib.suppress(BrokenPipeError, OSError, ValueError):
            sup.stdin.close()  # a supervisor that already exited makes the flush above fail
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

    def log_offset(self) -> int:
        """The log's current size: pass it as ``since=`` to wait only for lines written from now on."""
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_lines(self, pattern: str | re.Pattern[str], since: int = 0) -> Iterator[LogLine]:
        """Every complete log line after byte ``since`` that matches ``pattern`` (a regex), as it is now."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(since)
                data = handle.read()
        except OSError:
            return
        now, offset = time.time(), since
        for raw in data.splitlines(keepends=True):
            offset += len(raw)
            if not raw.endswith(b"\n"):
                break  # a line still being written
            text = raw.decode(errors="replace").rstrip("\r\n")
            if regex.search(text):
                yield LogLine(text, now, offset)

    def wait_for_log(self, pattern: str | re.Pattern[str], timeout: float | str = 30.0, since: int = 0) -> LogLine:
        """Block until a log line after byte ``since`` matches ``pattern``; a clear error with the tail if none does.

        ``seen_at`` is when we noticed it (within about 10 ms); a server's own timestamp in
        the line is the better truth, and the datastore targets parse it.
        """
        seconds = _duration(timeout, "timeout")
        position = since

        def next_match() -> LogLine | None:
            nonlocal position
            for line in self.log_lines(pattern, position):
                return line
            position = max(position, self._complete_lines_end(position))
            return None

        found = waiting.poll(next_match, seconds, LOG_POLL)
        if found is None:
            raise ServiceError(
                f"service {self.name!r}: no log line matching {getattr(pattern, 'pattern', pattern)!r} "
                f"within {seconds:g}s; log tail:\n{self.log_tail()}"
            )
        return found

    def _complete_lines_end(self, since: int) -> int:
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(since)
                data = handle.read()
        except OSError:
            return since
        return since + data.rfind(b"\n") + 1

    def log_tail(self, lines: int | None = None) -> str:
        """The last ``lines`` lines (default ``log_tail=``, 40) of the service's log (stdout and stderr)."""
        return tail_text(self.log_path, self.log_tail_lines if lines is None else lines)

    def __repr__(self) -> str:
        return f"<Service {self.name} pid={self.pid} port={self.port} restart={self.restart}>"


def _signal_number(value: int | str) -> int:
    if isinstance(value, str):
        name = value.upper() if value.upper().startswith("SIG") else f"SIG{value.upper()}"
        number = getattr(_signal, name, None)
        if not isinstance(number, int):
            raise ConfigError(f"stop_signal={value!r} is not a signal name (e.g. 'SIGTERM', 'SIGINT')")
        return int(number)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65:
        raise ConfigError(f"stop_signal={value!r} must be a signal name or number")
    return int(value)


class _GaveUp(Exception):
    """The service exited and its policy says it stays down: waiting longer is pointless."""


class ServiceGroup:
    """Services started together with one readiness for the group (a quorum cluster).

    Started one by one, each waiting to be healthy, the first member of a three-node
    consensus cluster never becomes healthy: it waits for peers that are not started yet.
    A group launches every member first, then waits until each one is running and the
    group's ``ready`` check (default: every member's own readiness) passes.
    """

    def __init__(
        self,
        members: Sequence[Service],
        *,
        ready: Check | None = None,
        name: str = "group",
        start_timeout: float | str = 30.0,
    ) -> None:
        if not members or not all(isinstance(m, Service) for m in members):
            raise ConfigError(f"service group {name!r} needs a non-empty list of services, got {members!r}")
        names = [m.name for m in members]
        if len(set(names)) != len(names):
            raise ConfigError(f"service group {name!r}: member names must be unique, got {names}")
        self.name = name
        self.members = list(members)
        self.start_timeout = _duration(start_timeout, "start_timeout")
        if ready is not None and (isinstance(ready, (str, int)) or not callable(ready)):
            raise ConfigError(f"service group {name!r}: ready={ready!r} must be a probe or a callable")
        self.ready = None if ready is None else _probes.as_probe(ready)

    def start(self) -> ServiceGroup:
        """Launch every member, then wait for the group to be ready; stop them all on failure."""
        try:
            for member in self.members:
                member.launch()
            deadline = time.monotonic() + self.start_timeout
            for member in self.members:
                member._wait_check(None, "its process", max(0.0, deadline - time.monotonic()))
            if self.ready is None:
                for member in self.members:
                    member.wait_ready(max(0.0, deadline - time.monotonic()))
            else:
                self._wait_group(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_group(self, deadline: float) -> None:
        ready = self.ready
        assert ready is not None
        last: BaseException | None = None

        def group_ready() -> bool:
            nonlocal last
            for member in self.members:
                if member.gave_up:
                    raise ServiceError(
                        f"service group {self.name!r}: member {member.name!r} exited ({member._last_exit()}) "
                        f"and will not restart; log tail:\n{member.log_tail()}"
                    )
            try:
                ready()
            except Exception as exc:
                last = exc
                return False
            return True

        if not waiting.until(group_ready, max(0.0, deadline - time.monotonic()), 0.05):
            tails = "\n".join(f"--- {m.name} ---\n{m.log_tail(15)}" for m in self.members)
            raise ServiceError(
                f"service group {self.name!r} did not become ready within {self.start_timeout:g}s "
                f"({type(last).__name__}: {last}); log tails:\n{tails}"
            )

    def stop(self) -> None:
        """Stop every member (safe to call twice)."""
        for member in reversed(self.members):
            member.stop()

    def __getitem__(self, name: str) -> Service:
        for member in self.members:
            if member.name == name:
                return member
        raise KeyError(f"service group {self.name!r} has no member {name!r}; members: {[m.name for m in self.members]}")

    def __iter__(self) -> Iterator[Service]:
        return iter(self.members)

    def __len__(self) -> int:
        return len(self.members)

    def __repr__(self) -> str:
        return f"<ServiceGroup {self.name} {[m.name for m in self.members]}>"
