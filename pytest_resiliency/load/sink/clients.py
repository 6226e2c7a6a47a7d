"""Locust users for non-HTTP stores: keyed writes through redis-py, psycopg or etcd's JSON gateway.

Loaded by locust only (the ``load`` fixture passes this file with ``client="redis"``,
``"postgres"`` or ``"etcd"``), so the same scenario as the in-process open-loop writer runs
out of process and scales with ``workers=N`` and remote workers. Locust's custom-client
pattern: each write is timed here and fired as a ``request`` event (which the sink ships
to the timeline), and goes on the ledger as ``ok`` / ``fail`` / ``indeterminate`` with the
store's own classifier.

Settings come from the master's ``--resiliency-client`` option (JSON), which locust
forwards to every worker: ``{"url": ..., "rate": per-user writes/s, "timeout": s}``.
Absolute imports only: locust imports this file by path.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import gevent
from locust import User, events, task

from pytest_resiliency.load import classifiers, stores
from pytest_resiliency.load.sink import ledger

CLIENT_OPTION = "--resiliency-client"
_GOLDEN = 0.6180339887498949
_users = itertools.count()
_clients: dict[str, Any] = {}


def _option(parser: Any, **_: Any) -> None:
    parser.add_argument(CLIENT_OPTION, type=str, default="{}", help="pytest-resiliency: store client settings (JSON)")


_events: Any = events
_events.init_command_line_parser.add_listener(_option)


def settings(environment: Any) -> dict[str, Any]:
    raw = getattr(environment.parsed_options, CLIENT_OPTION.lstrip("-").replace("-", "_"), "") or "{}"
    found: dict[str, Any] = json.loads(raw)
    return found


def _client(url: str, timeout: float) -> Any:
    """One client per process and store (redis-py pools and psycopg's per-greenlet connections are safe)."""
    if url not in _clients:
        _clients[url] = stores.connect(url, timeout=timeout)
    return _clients[url]


class ResiliencyStoreUser(User):
    """Writes a new key at ``rate`` per second on a fixed schedule (no drift, no catch-up burst)."""

    abstract = False

    def on_start(self) -> None:
        options = settings(self.environment)
        self._store = _client(str(options["url"]), float(options.get("timeout", stores.DEFAULT_TIMEOUT)))
        self._name = f"{self._store.kind} put"
        self._period = 1.0 / float(options.get("rate", 1.0))
        gevent.sleep(((next(_users) * _GOLDEN) % 1.0) * self._period)
        self._next = time.time()

    def wait_time(self) -> float:
        self._next += self._period
        now = time.time()
        if self._next < now - self._period:
            self._next = now
        return max(0.0, self._next - now)

    @task
    def put(self) -> None:
        key = ledger.new_key(stores.PREFIX)
        start = time.time()
        error: BaseException | None = None
        try:
            self._store.put(key)
        except Exception as exc:  # GreenletExit (the run stops) passes: the key stays pending, hence indeterminate
            error = exc
        end = time.time()
        if error is None:
            ledger.ok(key, start, end)
        else:
            ledger.write(key, start, self._store.classify(error))
        self.environment.events.request.fire(
            request_type=self._store.kind,
            name=self._name,
            start_time=start,
            response_time=(end - start) * 1000.0,
            response_length=0,
            exception=None if error is None else classifiers.label(error),  # locust takes str errors
            context={},
        )
