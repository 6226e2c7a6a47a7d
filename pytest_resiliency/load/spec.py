"""What a load run is: validated settings, turned into locust command lines.

Validation happens here, before any process starts, so bad input is one clear error
naming the argument and what is accepted.
"""

from __future__ import annotations

import json
import sys
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..budget import BudgetError, parse_duration
from .records import SCENARIO_OPTION

LOCUSTFILES = Path(__file__).parent / "locustfiles"
SINK_LOCUSTFILE = LOCUSTFILES / "resiliency_sink.py"
HTTP_LOCUSTFILE = LOCUSTFILES / "resiliency_http.py"
DEFAULT_RATE = 50.0
DEFAULT_WRITES = 0.3


class LoadError(RuntimeError):
    """The load could not start, died, or never produced a request; the message says why."""


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
    request_timeout: float
    write_path: str
    read_path: str
    locust_args: tuple[str, ...] = ()
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

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
                str(self.workers + self.remote_workers),
            ]
        return cmd + list(self.locust_args)

    def worker_command(self, master_host: str, master_port: int) -> list[str]:
        """The command that joins a worker to this run's master, here or on another host."""
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


def _whole(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise LoadError(f"load: {name}={value!r} must be a whole number >= {minimum}")
    return value


def _positive(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value != value:
        raise LoadError(f"load: {name}={value!r} must be a number > 0")
    return float(value)


def _seconds(value: Any, name: str) -> float:
    try:
        seconds = parse_duration(value, name)
    except BudgetError as exc:
        raise LoadError(f"load: {exc}") from None
    if seconds <= 0:
        raise LoadError(f"load: {name}={value!r} must be > 0 (e.g. 30, '30s', '2m')")
    return seconds


def _path(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise LoadError(f"load: {name}={value!r} must be a path starting with '/'")
    return value


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
    master_bind_host: str = "127.0.0.1",
    request_timeout: Any = "5s",
    write_path: str = "/orders",
    read_path: str = "/orders/{key}",
    locust_args: Any = (),
) -> LoadSpec:
    """Check every argument of ``load(...)``; raise :class:`LoadError` naming the bad one."""
    if not isinstance(url, str):
        raise LoadError(f"load: url={url!r} must be an http:// or https:// URL string")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LoadError(
            f"load: url={url!r} must be an http:// or https:// URL with a host (e.g. http://127.0.0.1:8080)"
        )
    users_n = _whole(users, "users", 1)
    spawn = float(users_n) if spawn_rate is None else _positive(spawn_rate, "spawn_rate")
    files: tuple[Path, ...] = ()
    if locustfile is not None:
        items = locustfile if isinstance(locustfile, (list, tuple)) else [locustfile]
        checked = []
        for item in items:
            if not isinstance(item, (str, Path)):
                raise LoadError(f"load: locustfile={item!r} must be a path to a .py file")
            path = Path(item).resolve()
            if path.suffix != ".py" or not path.is_file():
                raise LoadError(f"load: locustfile {str(item)!r} is not an existing .py file")
            checked.append(path)
        if not checked:
            raise LoadError("load: locustfile=[] names no file; pass a path or None for the built-in scenario")
        files = tuple(checked)
        if rate is not None or writes is not None:
            raise LoadError(
                "load: rate= and writes= drive the built-in scenario only; your locustfile sets its own "
                "wait_time and tasks (pass users= and spawn_rate=)"
            )
        total_rate, write_ratio = None, None
    else:
        total_rate = DEFAULT_RATE if rate is None else _positive(rate, "rate")
        write_ratio = DEFAULT_WRITES if writes is None else writes
        if isinstance(write_ratio, bool) or not isinstance(write_ratio, (int, float)) or not 0 <= write_ratio <= 1:
            raise LoadError(f"load: writes={writes!r} must be the share of writes, a number between 0 and 1")
        write_ratio = float(write_ratio)
    if "{key}" not in _path(read_path, "read_path"):
        raise LoadError(f"load: read_path={read_path!r} must contain '{{key}}' (e.g. '/orders/{{key}}')")
    if isinstance(locust_args, str) or not all(isinstance(a, str) for a in locust_args):
        raise LoadError(f"load: locust_args={locust_args!r} must be a list of strings (extra locust options)")
    return LoadSpec(
        url=url.rstrip("/"),
        users=users_n,
        spawn_rate=spawn,
        rate=total_rate,
        writes=write_ratio,
        locustfiles=files,
        duration=None if duration is None else _seconds(duration, "duration"),
        workers=_whole(workers, "workers", 0),
        remote_workers=_whole(remote_workers, "remote_workers", 0),
        master_bind_host=master_bind_host,
        request_timeout=_seconds(request_timeout, "request_timeout"),
        write_path=_path(write_path, "write_path"),
        read_path=read_path,
        locust_args=tuple(locust_args),
    )
