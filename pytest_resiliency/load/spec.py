"""What a load run is: validated settings, turned into locust command lines.

Validation happens here, before any process starts, so bad input is one clear error
naming the argument and what is accepted.
"""

from __future__ import annotations

import ipaddress
import json
import sys
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import validate
from ..errors import ConfigError, LoadError
from .errors import LoadConfigError
from .records import SCENARIO_OPTION

LOCUSTFILES = Path(__file__).parent / "locustfiles"
SINK_LOCUSTFILE = LOCUSTFILES / "resiliency_sink.py"
HTTP_LOCUSTFILE = LOCUSTFILES / "resiliency_http.py"
DEFAULT_RATE = 50.0
DEFAULT_WRITES = 0.3
DEFAULT_MASTER_PORT = 5557  # locust's, and the worker's --master-port default
DEFAULT_MISSING_AFTER = 3.0  # seconds of silence before a worker is missing (locust's own is ~4 s)
WORKER_LOSS = ("error", "continue")
WILDCARD_HOSTS = ("*", "0.0.0.0")
LOCAL_WORKER_PREFIX = "local-"

__all__ = ["LoadError", "LoadSpec", "make_spec"]  # LoadError: importable from here as before


@dataclass(frozen=True)
class LoadSpec:
    url: str
    users: int
    spawn_rate: float
    rate: float | None  # total requests/s of the built-in scenario; None for a user locustfile
    writes: float | None
    locustfiles: tuple[Path, ...]  # the user's, or empty for the built-in scenario
    duration: float | None
    workers: int
    remote_workers: int
    master_bind_host: str
    master_port: int  # 0: any free port
    request_timeout: float
    write_path: str
    read_path: str
    locust_args: tuple[str, ...] = ()
    remote_names: tuple[str, ...] = ()  # the expected remote workers' --name, when given by name
    workers_timeout: float | None = None  # how long to wait for every worker to join (None: start timeout)
    missing_after: float = DEFAULT_MISSING_AFTER
    on_worker_loss: str = "error"
    max_clock_skew: float | None = None  # None: no limit
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    @property
    def expected_workers(self) -> int:
        return self.workers + self.remote_workers

    def local_worker_names(self) -> list[str]:
        return [f"{LOCAL_WORKER_PREFIX}{i}" for i in range(self.workers)]

    def cluster_json(self) -> str:
        """The master's settings for watching its workers (``$RESILIENCY_CLUSTER``)."""
        settings = {
            "missing_after": self.missing_after,
            "max_clock_skew": self.max_clock_skew,
            "expected": list(self.remote_names),
        }
        return json.dumps(settings, separators=(",", ":"))

    @property
    def distributed(self) -> bool:
        return self.workers + self.remote_workers > 0

    @property
    def builtin(self) -> bool:
        return not self.locustfiles

    def files(self) -> list[str]:
        """The ``-f`` list: the sink first, then the scenario."""
        scenario = [HTTP_LOCUSTFILE] if self.builtin else list(self.locustfiles)
        return [str(p) for p in [SINK_LOCUSTFILE, *scenario]]

    def scenario_json(self) -> str:
        settings: dict[str, Any] = {"run_id": self.run_id}
        if self.builtin:
            assert self.rate is not None
            settings.update(
                rate=self.rate / self.users,
                users=self.users,
                single=not self.distributed,
                writes=self.writes,
                write_path=self.write_path,
                read_path=self.read_path,
                request_timeout=self.request_timeout,
            )
        return json.dumps(settings, separators=(",", ":"))

    def master_command(self, json_file: Path, master_port: int | None) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            ",".join(self.files()),
            "--headless",
            "-u",
            str(self.users),
            "-r",
            f"{self.spawn_rate:g}",
            "-H",
            self.url,
            "--only-summary",
            "--exit-code-on-error",
            "0",
            "--json-file",
            str(json_file),
            SCENARIO_OPTION,
            self.scenario_json(),
        ]
        if self.duration is not None:
            cmd += ["--run-time", f"{max(1, round(self.duration))}s"]
        if self.distributed and master_port is not None:
            cmd += [
                "--master",
                "--master-bind-host",
                self.master_bind_host,
                "--master-bind-port",
                str(master_port),
                "--expect-workers",
                str(self.expected_workers),
            ]
        return cmd + list(self.locust_args)

    def worker_command(self, master_host: str, master_port: int) -> list[str]:
        """A worker on the pytest host: the same files as the master, read from disk."""
        return [
            sys.executable,
            "-m",
            "locust",
            "-f",
            ",".join(self.files()),
            "--worker",
            "--master-host",
            master_host,
            "--master-port",
            str(master_port),
        ]


def remote_worker_argv(
    master_host: str, master_port: int, python: str = "python3", name: str | None = None
) -> list[str]:
    """The command that joins a worker on another host: it fetches the locustfiles from the master."""
    argv = [
        python,
        "-m",
        "pytest_resiliency.load.worker",
        "--master-host",
        master_host,
        "--master-port",
        str(master_port),
    ]
    return argv + (["--name", name] if name else [])


def checked(check: Any, value: Any, name: str, **options: Any) -> Any:
    """A :mod:`pytest_resiliency.validate` check, its error prefixed with ``load:`` (a LoadConfigError)."""
    try:
        return check(value, name, **options)
    except ConfigError as exc:
        raise LoadConfigError(f"load: {exc}") from None


def _whole(value: Any, name: str, minimum: int) -> int:
    result: int = checked(validate.count, value, name, minimum=minimum)
    return result


def _positive(value: Any, name: str) -> float:
    number = checked(validate.instance, value, name, kind=(int, float), accepted="a number > 0")
    if not number > 0 or number == float("inf"):
        raise LoadConfigError(f"load: {name}={validate.shown(value)} must be a number > 0")
    return float(number)


def _seconds(value: Any, name: str) -> float:
    seconds: float = checked(validate.duration, value, name, positive=True)
    return seconds


def _path(value: Any, name: str) -> str:
    path: str = checked(validate.instance, value, name, kind=str, accepted="a path starting with '/'")
    if not path.startswith("/"):
        raise LoadConfigError(f"load: {name}={value!r} must be a path starting with '/'")
    return path


def _remote_workers(value: Any) -> tuple[int, tuple[str, ...]]:
    """``remote_workers=2`` or ``remote_workers=["load-a", "load-b"]`` (the workers' ``--name``)."""
    if isinstance(value, (list, tuple)):
        names = tuple(value)
        bad = [n for n in names if not isinstance(n, str) or not n.strip() or n.startswith(LOCAL_WORKER_PREFIX)]
        if bad or not names or len(set(names)) != len(names):
            raise LoadConfigError(
                f"load: remote_workers={value!r} must be a whole number or a list of distinct, non-empty worker "
                f"names (each worker's --name; names starting with {LOCAL_WORKER_PREFIX!r} are the local workers')"
            )
        return len(names), names
    return _whole(value, "remote_workers", 0), ()


def _bind_host(value: Any) -> str:
    """An IPv4 address of this host, or ``0.0.0.0``/``*`` for every interface (not recommended)."""
    if value in WILDCARD_HOSTS:
        return "*"
    try:
        address = ipaddress.IPv4Address(value)
    except (ipaddress.AddressValueError, ValueError):
        raise LoadConfigError(
            f"load: master_bind_host={value!r} must be an IPv4 address of this host that the load hosts reach "
            "(e.g. '10.0.0.5'; '127.0.0.1' for local workers only), or '0.0.0.0' for every interface"
        ) from None
    return str(address)


def _master_port(value: Any, remote: int, distributed: bool) -> int:
    if value is None:
        return DEFAULT_MASTER_PORT if remote else 0
    if not distributed:
        raise LoadConfigError(f"load: master_port={value!r} needs a distributed run (workers= or remote_workers= > 0)")
    port: int = checked(validate.port, value, "master_port", allow_zero=True)
    return port


def make_spec(
    url: Any,
    users: Any = 10,
    rate: Any = None,
    writes: Any = None,
    locustfile: Any = None,
    duration: Any = None,
    workers: Any = 0,
    *,
    spawn_rate: Any = None,
    remote_workers: Any = 0,
    master_bind_host: Any = "127.0.0.1",
    master_port: Any = None,
    workers_timeout: Any = None,
    missing_after: Any = DEFAULT_MISSING_AFTER,
    on_worker_loss: Any = "error",
    max_clock_skew: Any = None,
    request_timeout: Any = "5s",
    write_path: str = "/orders",
    read_path: str = "/orders/{key}",
    locust_args: Any = (),
) -> LoadSpec:
    """Check every argument of ``load(...)``; raise :class:`LoadConfigError` naming the bad one."""
    checked(validate.instance, url, "url", kind=str, accepted="an http:// or https:// URL string")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LoadConfigError(
            f"load: url={url!r} must be an http:// or https:// URL with a host (e.g. http://127.0.0.1:8080)"
        )
    users_n = _whole(users, "users", 1)
    spawn = float(users_n) if spawn_rate is None else _positive(spawn_rate, "spawn_rate")
    files: tuple[Path, ...] = ()
    if locustfile is not None:
        items = locustfile if isinstance(locustfile, (list, tuple)) else [locustfile]
        paths = []
        for item in items:
            if not isinstance(item, (str, Path)):
                raise LoadConfigError(f"load: locustfile={item!r} must be a path to a .py file")
            path = Path(item).resolve()
            if path.suffix != ".py" or not path.is_file():
                raise LoadConfigError(f"load: locustfile {str(item)!r} is not an existing .py file")
            paths.append(path)
        if not paths:
            raise LoadConfigError("load: locustfile=[] names no file; pass a path or None for the built-in scenario")
        files = tuple(paths)
        if rate is not None or writes is not None:
            raise LoadConfigError(
                "load: rate= and writes= drive the built-in scenario only; your locustfile sets its own "
                "wait_time and tasks (pass users= and spawn_rate=)"
            )
        total_rate, write_ratio = None, None
    else:
        total_rate = DEFAULT_RATE if rate is None else _positive(rate, "rate")
        write_ratio = DEFAULT_WRITES if writes is None else writes
        share = "the share of writes, a number between 0 and 1"
        checked(validate.instance, write_ratio, "writes", kind=(int, float), accepted=share)
        if not 0 <= write_ratio <= 1:
            raise LoadConfigError(f"load: writes={validate.shown(writes)} must be {share}")
        write_ratio = float(write_ratio)
    if "{key}" not in _path(read_path, "read_path"):
        raise LoadConfigError(f"load: read_path={read_path!r} must contain '{{key}}' (e.g. '/orders/{{key}}')")
    if isinstance(locust_args, str) or not all(isinstance(a, str) for a in locust_args):
        raise LoadConfigError(f"load: locust_args={locust_args!r} must be a list of strings (extra locust options)")
    remote_count, remote_names = _remote_workers(remote_workers)
    local_count = _whole(workers, "workers", 0)
    distributed = local_count + remote_count > 0
    checked(validate.one_of, on_worker_loss, "on_worker_loss", choices=WORKER_LOSS)
    return LoadSpec(
        url=url.rstrip("/"),
        users=users_n,
        spawn_rate=spawn,
        rate=total_rate,
        writes=write_ratio,
        locustfiles=files,
        duration=None if duration is None else _seconds(duration, "duration"),
        workers=local_count,
        remote_workers=remote_count,
        master_bind_host=_bind_host(master_bind_host),
        master_port=_master_port(master_port, remote_count, distributed),
        remote_names=remote_names,
        workers_timeout=None if workers_timeout is None else _seconds(workers_timeout, "workers_timeout"),
        missing_after=_seconds(missing_after, "missing_after"),
        on_worker_loss=on_worker_loss,
        max_clock_skew=None if max_clock_skew is None else _seconds(max_clock_skew, "max_clock_skew"),
        request_timeout=_seconds(request_timeout, "request_timeout"),
        write_path=_path(write_path, "write_path"),
        read_path=read_path,
        locust_args=tuple(locust_args),
    )
