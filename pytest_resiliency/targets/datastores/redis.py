"""Redis as a target: one ``redis-server`` under the supervisor, in a chosen persistence mode.

Persistence modes and what a SIGKILL of the process costs (the OS page cache survives a
process crash, so fsync policy matters for power loss, not for kill -9):

* ``aof-always``: every write appended (and fsynced) before the reply: nothing acknowledged is lost;
* ``aof-everysec``: appended before the reply, fsynced every second: nothing lost on a process crash;
* ``rdb``: a snapshot every ``save`` seconds: writes since the last snapshot are lost;
* ``none``: memory only: every acknowledged write is lost.

Readiness is a real ``PING`` (a restarting Redis answers ``LOADING`` until its data is
loaded); the log's "Ready to accept connections" is the server's own truth.
"""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path
from typing import Any, Unpack

from ...errors import ConfigError
from ...load import classifiers, stores
from ..service import PassThroughOptions, Service
from . import KeyedTarget, ServerTarget, require

PERSISTENCE = ("aof-always", "aof-everysec", "rdb", "none")
PACKAGE = "redis-server"
_STAMP = re.compile(r"^\d+:[A-Z] (\d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d\.\d{3}) ")
EVENTS = {
    "ready": re.compile(r"Ready to accept connections"),
    "loaded": re.compile(r"DB loaded from (append only file|disk)"),
    "snapshot saved": re.compile(r"DB saved on disk|Background saving terminated with success"),
}


def log_time(line: str) -> float | None:
    """Epoch seconds of a redis log line (``12:M 29 Nov 2026 15:30:00.123 * ...``, local time)."""
    found = _STAMP.match(line)
    if not found:
        return None
    return _dt.datetime.strptime(found.group(1), "%d %b %Y %H:%M:%S.%f").timestamp()


class RedisServer(ServerTarget, KeyedTarget):
    """A supervised ``redis-server``; create it with the ``redis_server`` fixture.

    A write is ``SET key 1``; the truth is its log: ready, data loaded, snapshot saved.
    """

    classify = staticmethod(classifiers.redis)
    EVENTS = EVENTS
    log_time = staticmethod(log_time)

    def __init__(
        self,
        service: Any,
        data_dir: Path,
        *,
        persistence: str = "aof-always",
        save: float = 1.0,
        name: str = "redis",
        restart_delay: float | str = "200ms",
        config: dict[str, str] | None = None,
        timeout: float = 2.0,
        **options: Unpack[PassThroughOptions],
    ) -> None:
        if persistence not in PERSISTENCE:
            raise ConfigError(f"redis: persistence={persistence!r} is not a mode; accepted: {', '.join(PERSISTENCE)}")
        if isinstance(save, bool) or not isinstance(save, (int, float)) or save < 1:
            raise ConfigError(f"redis: save={save!r} must be a snapshot interval of at least 1 second")
        binary = require("redis-server", PACKAGE)
        self.persistence = persistence
        self.save = int(save)
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        settings = {
            "bind": "127.0.0.1",
            "port": "{port}",
            "dir": str(data_dir),
            "daemonize": "no",
            "protected-mode": "no",
            "logfile": '""',
            "appendonly": "yes" if persistence.startswith("aof") else "no",
            "appendfsync": "everysec" if persistence == "aof-everysec" else "always",
            "save": f"{self.save} 1" if persistence == "rdb" else '""',
            **(config or {}),
        }
        conf = "".join(f"{key} {value}\n" for key, value in settings.items())
        self.service: Service = service.define(
            [binary, str(data_dir / "redis.conf")],
            name=name,
            ready=self._ping,
            files={data_dir / "redis.conf": conf},
            restart_delay=restart_delay,
            **options,
        )
        self.name = name
        self._pinger: stores.RedisStore | None = None
        self.url = f"redis://127.0.0.1:{self.service.port}/0"
        self.client = stores.RedisStore(self.url, timeout=timeout)

    def _ping(self) -> None:
        if self._pinger is None:
            self._pinger = stores.RedisStore(self.url, timeout=1.0)
        self._pinger.client.ping()  # LOADING raises until the data is in

    def __repr__(self) -> str:
        return f"<RedisServer {self.url} persistence={self.persistence} pid={self.service.pid}>"
