"""PostgreSQL as a target: ``initdb`` in a temporary directory, ``postgres`` under the supervisor.

PostgreSQL refuses to run as root, so when pytest is root the cluster is initialised and
run as an unprivileged account (``postgres`` when the Debian package made it, else
``nobody``) in a directory of its own outside pytest's private temp tree.

Durability settings are the point: ``synchronous_commit=on`` flushes the WAL before a
COMMIT is acknowledged (a crash loses nothing acknowledged); ``off`` acknowledges from the
WAL buffers in shared memory, which the WAL writer flushes every ``wal_writer_delay``
(PostgreSQL documents the loss window as up to three times that): a SIGKILL of the server
loses what was not flushed. Readiness is a real query: PostgreSQL accepts connections
while "the database system is starting up".
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Self, Unpack

from ...errors import ConfigError
from ...load import classifiers, stores
from ...validate import duration
from ..service import Account, PassThroughOptions, Service, give_to, resolve_user
from . import KeyedTarget, ServerTarget, require

PACKAGE = "postgresql"
BIN_DIRS = ("/usr/lib/postgresql/*/bin",)
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) (UTC|GMT)")
EVENTS = {
    "ready": re.compile(r"database system is ready to accept connections"),
    "crash recovery": re.compile(r"database system was not properly shut down; automatic recovery in progress"),
    "redo done": re.compile(r"redo done at"),
}
SYNCHRONOUS_COMMIT = ("on", "off", "local", "remote_write", "remote_apply")


def log_time(line: str) -> float | None:
    """Epoch seconds of a log line with ``log_line_prefix='%m '`` (``2026-11-29 15:30:00.123 UTC``)."""
    found = _STAMP.match(line)
    if not found:
        return None
    moment = _dt.datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S.%f")
    return moment.replace(tzinfo=_dt.UTC).timestamp()


def default_account() -> Account | None:
    """Who runs the server: ourselves unless we are root, then ``postgres`` or ``nobody``."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return resolve_user(name)
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' account exists: pass user=")


class PostgresServer(ServerTarget, KeyedTarget):
    """A supervised PostgreSQL cluster; create it with the ``postgres_server`` fixture.

    A write is an ``INSERT`` of one row in autocommit: acknowledged = committed, as
    ``synchronous_commit`` defines it. ``faults.kill(pg)`` kills the postmaster's whole process
    group. The truth is its log: crash recovery, redo done, ready.
    """

    classify = staticmethod(classifiers.psycopg)
    client: stores.PostgresStore
    EVENTS = EVENTS
    log_time = staticmethod(log_time)

    def __init__(
        self,
        service: Any,
        *,
        synchronous_commit: str = "on",
        wal_writer_delay: float | str = "200ms",
        fsync: bool = True,
        settings: dict[str, str] | None = None,
        user: str | int | None = None,
        name: str = "postgres",
        restart_delay: float | str = "200ms",
        table: str = "resiliency_ledger",
        timeout: float = 2.0,
        **options: Unpack[PassThroughOptions],
    ) -> None:
        if synchronous_commit not in SYNCHRONOUS_COMMIT:
            raise ConfigError(
                f"postgres: synchronous_commit={synchronous_commit!r} is not accepted; "
                f"accepted: {', '.join(SYNCHRONOUS_COMMIT)}"
            )
        delay_ms = round(duration(wal_writer_delay, "wal_writer_delay") * 1000)
        if not 1 <= delay_ms <= 10000:
            raise ConfigError(f"postgres: wal_writer_delay={wal_writer_delay!r} must be between 1ms and 10s")
        self.initdb = require("initdb", PACKAGE, BIN_DIRS)
        binary = require("postgres", PACKAGE, BIN_DIRS)
        self.account = resolve_user(user) if user is not None else default_account()
        self.root = Path(tempfile.mkdtemp(prefix="resiliency-pg-"))  # not under pytest's 0700 temp tree
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.socket_dir.mkdir()
        give_to(self.root, self.account)
        self.synchronous_commit = synchronous_commit
        self.wal_writer_delay = delay_ms / 1000
        self.table = table
        self.name = name
        self._init_cluster()
        config = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.socket_dir),
            "synchronous_commit": synchronous_commit,
            "wal_writer_delay": f"{delay_ms}ms",
            "fsync": "on" if fsync else "off",
            "log_line_prefix": "%m [%p] ",
            "log_timezone": "UTC",
            "logging_collector": "off",
            "shared_buffers": "16MB",
            "recovery_init_sync_method": "syncfs",  # one syncfs, not an fsync per file: crash recovery starts in ms
            "max_connections": "40",
            **(settings or {}),
        }
        args = [item for key, value in config.items() for item in ("-c", f"{key}={value}")]
        self.service: Service = service.define(
            [binary, "-D", str(self.data_dir), "-p", "{port}", *args],
            name=name,
            ready=self._query,
            user=None if self.account is None else self.account.uid,
            stop_signal="SIGINT",  # "fast" shutdown: SIGTERM waits for every client to leave
            restart_delay=restart_delay,
            **options,
        )
        role = self.account.name if self.account is not None else pwd.getpwuid(os.geteuid()).pw_name
        self.url = f"postgresql://{role}@127.0.0.1:{self.service.port}/postgres"
        self.client = stores.PostgresStore(self.url, timeout=timeout, table=table)

    def _init_cluster(self) -> None:
        drop: dict[str, Any] = {}
        if self.account is not None:
            drop = {"user": self.account.uid, "group": self.account.gid, "extra_groups": []}
        done = subprocess.run(
            [self.initdb, "-D", str(self.data_dir), "--auth=trust", "--no-sync", "-E", "UTF8", "--no-instructions"],
            capture_output=True,
            text=True,
            cwd=self.root,
            env={**os.environ, "LC_ALL": "C"},
            timeout=120,
            **drop,
        )
        if done.returncode != 0:
            raise RuntimeError(f"postgres: initdb failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")

    def _query(self) -> None:
        import psycopg

        with psycopg.connect(self.url, connect_timeout=2, autocommit=True) as conn:
            conn.execute("SELECT 1").fetchone()

    def start(self) -> Self:
        super().start()
        self.client.create_table()
        return self

    def stop(self) -> None:
        self.client.close()
        self.service.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __repr__(self) -> str:
        return f"<PostgresServer {self.url} synchronous_commit={self.synchronous_commit} pid={self.service.pid}>"
