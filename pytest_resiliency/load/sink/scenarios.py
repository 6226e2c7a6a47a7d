"""The built-in HTTP scenario: reads and keyed writes at a constant total rate.

The convention a system under test implements (the demo workload does):

* write: ``POST <write_path>`` (default ``/orders``) with JSON ``{"key": "<unique key>"}``;
  any 2xx acknowledges it (ledger ``ok``); 502/504, a timeout or a reset after sending is
  ``indeterminate``; a refused connection or any other status is ``fail``.
* read: ``GET <read_path>`` (default ``/orders/{key}``) of a key this user had
  acknowledged (or of a key never written, before the first ack); 200 and 404 both
  count as success here: the service answered, and whether data survived is the
  ledger's question, not the error rate's.
* read-back (after the load, from pytest): the same ``GET``, 200 = present, 404 = absent.

Loaded only inside locust (through ``locustfiles/resiliency_http.py``); settings come
from the master's ``--resiliency-scenario`` option, which locust forwards to workers.

The user is a :class:`~locust.FastHttpUser` (geventhttpclient): it costs a fraction of the CPU
of requests-based ``HttpUser`` per request, so one locust process carries about four times
the rate. Its client never retries (``max_retries = 0``), so every attempt is evidence.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import deque
from typing import Any

import gevent
from locust import FastHttpUser, task

from ..records import error_name
from . import ledger, register_option, scenario_settings

register_option()

DEFAULTS: dict[str, Any] = {
    "rate": 1.0,  # requests per second per user
    "writes": 0.3,
    "write_path": "/orders",
    "read_path": "/orders/{key}",
    "request_timeout": 5.0,
}
RECENT_KEYS = 100
_JSON = {"Content-Type": "application/json"}
_GOLDEN = 0.6180339887498949
_users = itertools.count()


class ResiliencyHttpUser(FastHttpUser):
    """Reads and writes in the ratio ``writes``, each user at ``rate`` requests per second.

    Users are paced on a fixed schedule (no drift, no catch-up bursts) and their phases
    are spread over the period, so the requests of N users arrive evenly: at 200 req/s
    a change of state is seen within about 5 ms, whatever the spawn rate.
    """

    abstract = False
    max_retries = 0  # a retried request would hide an outcome

    def __init__(self, environment: Any) -> None:
        settings = {**DEFAULTS, **scenario_settings(environment)}
        # FastHttpUser reads its timeouts when it builds its client, in __init__
        self.network_timeout = self.connection_timeout = float(settings["request_timeout"])
        super().__init__(environment)
        self._settings = settings

    def on_start(self) -> None:
        settings = self._settings
        self._writes = float(settings["writes"])
        self._write_path = str(settings["write_path"])
        self._read_path = str(settings["read_path"])
        self._period = 1.0 / float(settings["rate"])
        self._recent: deque[str] = deque(maxlen=RECENT_KEYS)
        self._absent = f"{ledger.run_id}-absent"
        n = next(_users)
        users = int(settings.get("users") or 0)
        # One process holds every user: spread them exactly; workers each count from 0: a
        # golden-ratio sequence spreads any number of them nearly evenly.
        phase = (n % users) / users if settings.get("single") and users else (n * _GOLDEN) % 1.0
        gevent.sleep(phase * self._period)
        self._next = time.time()

    def wait_time(self) -> float:
        self._next += self._period
        now = time.time()
        if self._next < now - self._period:  # responses slower than the period: no catch-up burst
            self._next = now
        return max(0.0, self._next - now)

    @task
    def step(self) -> None:
        if random.random() < self._writes:
            self._write()
        else:
            self._read()

    def _write(self) -> None:
        key = ledger.new_key()
        start = time.time()
        with self.client.post(
            self._write_path,
            data=f'{{"key":"{key}"}}',  # keys are [A-Za-z0-9-]: no escaping needed
            headers=_JSON,
            name=self._write_path,
            catch_response=True,
        ) as response:
            status = ledger.from_response(key, response, start)
            if status == "ok":
                response.success()
                self._recent.append(key)
            else:
                response.failure(_why(response))

    def _read(self) -> None:
        key = random.choice(self._recent) if self._recent else self._absent
        path = self._read_path.replace("{key}", key)
        with self.client.get(path, name=self._read_path, catch_response=True) as response:
            if response.status_code in (200, 404):
                response.success()
            else:
                response.failure(_why(response))


def _why(response: Any) -> str:
    error = getattr(response, "error", None)
    if error is not None and not response.status_code:
        return error_name(error) or "error"
    return f"HTTP {response.status_code}"
