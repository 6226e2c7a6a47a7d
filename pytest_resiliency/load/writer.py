"""The open-loop writer: keyed writes through any Python client, each one evidence and a ledger entry.

Locust drives HTTP (and, with :mod:`.sink.clients`, store clients out of process); this
writer drives any Python client in the pytest process with no boilerplate: a ``put(key)``
callable, a ``rate`` and a ``concurrency``. It is **open loop**: write *i* is due at
``t0 + i / rate`` whatever happened to the earlier ones, so an outage shows up as failures
or as writes piling up, never as a pause in the schedule (closed-loop clients stop asking
when the server stops answering, and the outage disappears from the evidence). When every
thread is blocked and ``max_backlog`` writes are already waiting, a due write is skipped
and counted (``skipped``), never silently postponed.

Each write records its true send time (``start``, taken immediately before ``put``) and its
latency (completion - start) as an operation (``source="writer:<name>"``), and goes on the
ledger: ``ok`` when ``put`` returned, otherwise what the classifier says (``fail`` =
provably not applied, ``indeterminate`` = unknown, never counted as lost).
"""

from __future__ import annotations

import itertools
import queue
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import validate
from ..errors import ConfigError
from . import classifiers
from .errors import WriterConfigError, WriterError

if TYPE_CHECKING:
    from ..experiment import Experiment

DEFAULT_MAX_DURATION = 600.0


__all__ = ["Writer", "WriterError"]  # WriterError: importable from here as before


def _checked(check: Any, value: Any, name: str, **options: Any) -> Any:
    """A :mod:`pytest_resiliency.validate` check, its error prefixed with ``writer:``."""
    try:
        return check(value, name, **options)
    except ConfigError as exc:
        raise WriterConfigError(f"writer: {exc}") from None


def _seconds(value: Any, name: str) -> float:
    seconds: float = _checked(validate.duration, value, name, positive=True)
    return seconds


class Writer:
    """Writes unique keys at ``rate`` per second with ``concurrency`` threads until stopped.

    ``target`` is a ``put(key)`` callable, or an object with ``put`` (and ``classify``) such
    as a store client or a datastore target, whose classifier is then used by default.
    """

    def __init__(
        self,
        experiment: Experiment,
        target: Any,
        *,
        rate: float = 100.0,
        concurrency: int = 4,
        classify: str | classifiers.Classifier | None = None,
        name: str | None = None,
        prefix: str | None = None,
        duration: float | str | None = None,
        max_backlog: int | None = None,
    ) -> None:
        put = getattr(target, "put", target)
        if not callable(put):
            raise WriterConfigError(f"writer: {target!r} is neither a put(key) callable nor an object with .put(key)")
        per_second = "a number of writes per second > 0"
        _checked(validate.instance, rate, "rate", kind=(int, float), accepted=per_second)
        if not 0 < rate < float("inf"):
            raise WriterConfigError(f"writer: rate={validate.shown(rate)} must be {per_second}")
        _checked(validate.count, concurrency, "concurrency", minimum=1)
        try:
            self.classify = classifiers.get(classify if classify is not None else getattr(target, "classify", None))
        except ConfigError as exc:
            raise WriterConfigError(f"writer: {exc}") from None
        self.experiment = experiment
        self.put: Callable[[str], Any] = put
        self.rate = float(rate)
        self.concurrency = concurrency
        self.name = name or str(getattr(target, "name", None) or getattr(put, "__name__", "put"))
        self.source = f"writer:{self.name}"
        self.prefix = prefix or f"{_default_prefix()}-{secrets.token_hex(3)}"
        self.duration = None if duration is None else _seconds(duration, "duration")
        self.max_backlog: int = (
            concurrency * 4 if max_backlog is None else _checked(validate.count, max_backlog, "max_backlog", minimum=1)
        )
        self.acks: list[tuple[str, float]] = []  # the client's own record: (key, ack time), in ack order
        self.outcomes: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.skipped = 0
        self.started_at: float | None = None
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stop = threading.Event()
        self._in_flight: dict[str, float] = {}  # key -> send time, while the put has not returned
        self._changed = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._counter = itertools.count(1)

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> Writer:
        if self._threads:
            raise WriterError(f"writer {self.name!r} is already started")
        self.started_at = time.time()
        self._threads = [
            threading.Thread(target=self._work, name=f"resiliency-writer-{self.name}-{i}", daemon=True)
            for i in range(self.concurrency)
        ]
        self._threads.append(
            threading.Thread(target=self._schedule, name=f"resiliency-writer-{self.name}", daemon=True)
        )
        for thread in self._threads:
            thread.start()
        return self

    def _schedule(self) -> None:
        t0 = time.monotonic()
        limit = self.duration if self.duration is not None else DEFAULT_MAX_DURATION
        for i in itertools.count():
            due = t0 + i / self.rate
            if due - t0 > limit or self._stop.wait(max(0.0, due - time.monotonic())):
                break
            if self._queue.qsize() >= self.max_backlog:
                with self._changed:
                    self.skipped += 1
                continue
            self._queue.put(f"{self.prefix}-{next(self._counter)}")
        for _ in range(self.concurrency):
            self._queue.put(None)

    def _work(self) -> None:
        while True:
            key = self._queue.get()
            if key is None or self._stop.is_set():
                return
            self._write(key)

    def _write(self, key: str) -> None:
        exp = self.experiment
        start = time.time()
        with self._changed:
            self._in_flight[key] = start
        try:
            self.put(key)
        except Exception as exc:
            end = time.time()
            with self._changed:
                del self._in_flight[key]
            status = self.classify(exc)
            if status not in (classifiers.FAIL, classifiers.INDETERMINATE):
                status = classifiers.INDETERMINATE  # a classifier that answers nonsense must not invent a loss
            error = classifiers.label(exc)
            exp.record_operation(start, end - start, False, self.name, self.source, error)
            exp.record_write(key, start, None, status)
            with self._changed:
                self.outcomes[status] += 1
                self.errors[error] += 1
                self._changed.notify_all()
            return
        end = time.time()
        exp.record_operation(start, end - start, True, self.name, self.source, None)
        exp.record_write(key, start, end, "ok")
        with self._changed:
            del self._in_flight[key]
            self.outcomes["ok"] += 1
            self.acks.append((key, end))
            self._changed.notify_all()

    def stop(self) -> None:
        """Stop scheduling, drop writes not yet sent, wait for those in flight. Idempotent."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        while not self._queue.empty():  # due but never sent: not evidence, not on the ledger
            self._queue.get_nowait()

    def join(self, timeout: float | str = "30s") -> bool:
        """Wait until a writer with ``duration=`` has sent and settled its last write; whether it has."""
        deadline = time.monotonic() + _seconds(timeout, "timeout")
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads) and not self._stop.is_set()

    @property
    def acknowledged(self) -> list[str]:
        """The keys this client saw acknowledged (its own list, independent of the timeline)."""
        with self._changed:
            return [key for key, _ in self.acks]

    # -- waiting ---------------------------------------------------------------------

    def wait_steady(self, successes: int | None = None, timeout: float | str = "30s") -> Writer:
        """Block until ``successes`` writes (default: the recovery criteria's) were acknowledged."""
        need = self.experiment.criteria.successes if successes is None else successes
        seconds = _seconds(timeout, "timeout")
        deadline = time.monotonic() + seconds
        with self._changed:
            while self.outcomes["ok"] < need:
                left = deadline - time.monotonic()
                if left <= 0:
                    errors = ", ".join(f"{e} x{n}" for e, n in self.errors.most_common(3)) or "none"
                    raise WriterError(
                        f"writer {self.name!r} did not become steady within {seconds:g}s: "
                        f"{self.outcomes['ok']} acknowledged (needed {need}), errors: {errors}"
                    )
                self._changed.wait(left)
        return self

    def wait_recovered(self, timeout: float | str = "30s") -> bool:
        """Block until the recovery criteria hold after the last fault; ``False`` at the deadline.

        Recovery is settled only once every write sent before it was seen has answered: a
        write that was still waiting may yet time out, and a failure sent then moves the
        recovery later (the measurement would say "not recovered" if the writer stopped at once).
        """
        deadline = time.monotonic() + _seconds(timeout, "timeout")
        while True:
            if not self.experiment.wait_recovered(timeout=max(0.0, deadline - time.monotonic())):
                return False
            seen = time.time()
            with self._changed:
                settled = self._changed.wait_for(
                    lambda seen=seen: all(sent > seen for sent in self._in_flight.values()),  # type: ignore[misc]
                    max(0.0, deadline - time.monotonic()),
                )
            if settled and self.experiment.recovered():
                return True
            if time.monotonic() >= deadline:
                return False

    def stats(self) -> dict[str, Any]:
        """Counts so far: writes by outcome, skipped schedule slots, the most common errors."""
        with self._changed:
            return {
                "writes": {s: self.outcomes.get(s, 0) for s in ("ok", "fail", "indeterminate")},
                "skipped": self.skipped,
                "errors": dict(self.errors.most_common(10)),
                "rate": self.rate,
                "concurrency": self.concurrency,
            }

    def __repr__(self) -> str:
        return f"<Writer {self.name} rate={self.rate:g}/s concurrency={self.concurrency} {self.stats()['writes']}>"


def _default_prefix() -> str:
    from .stores import PREFIX

    return PREFIX
