"""Monitors: probes fired on schedule, each outcome an operation on the timeline.

Open loop on purpose: a monitor that waited for each answer before sending the next
would go blind exactly when the service hangs, and date the recovery late or early.
"""

from __future__ import annotations

import itertools
import math
import queue
import threading
import time

from . import probes as _probes
from .timeline import Timeline


class Monitor:
    """A probe fired on schedule (open loop) from a small pool of threads.

    One hung call never delays the next: every ``every`` seconds a call starts on an idle
    thread of the pool. A call still running after ``timeout`` is recorded as a failure
    at that moment (its late answer is dropped), as a client timeout would be. A tick that
    finds every thread busy is skipped and counted in ``skipped``; the evidence carries
    true send and completion times either way, so the recovery bracket stays honest.
    """

    def __init__(
        self,
        timeline: Timeline,
        probe: _probes.Probe,
        every: float,
        name: str,
        concurrency: int = 4,
        timeout: float | None = None,
    ) -> None:
        self.probe = probe
        self.every = every
        self.name = name
        self.source = f"probe:{name}"
        self.timeline = timeline
        self.concurrency = concurrency
        self.timeout = max(1.0, every) if timeout is None else timeout
        self.skipped = 0
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._idle = concurrency
        self._inflight: dict[int, tuple[float, float]] = {}  # call id -> (wall start, monotonic start)
        self._timed_out: set[int] = set()
        self._calls = itertools.count()
        self._queue: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._workers = [
            threading.Thread(target=self._work, name=f"resiliency-monitor-{name}-{i}", daemon=True)
            for i in range(concurrency)
        ]
        for worker in self._workers:
            worker.start()
        self._thread = threading.Thread(target=self._schedule, name=f"resiliency-monitor-{name}", daemon=True)
        self._thread.start()

    def _schedule(self) -> None:
        next_at = time.monotonic()
        while not self._stopped.is_set():
            now = time.monotonic()
            self._expire(now)
            if now < next_at:
                self._stopped.wait(min(next_at, self._next_expiry()) - now)
                continue
            with self._lock:
                if self._idle:
                    self._idle -= 1
                    self._queue.put(next(self._calls))
                else:
                    self.skipped += 1
            next_at += self.every
            if next_at <= now:  # the scheduler itself was late: keep the period from now on
                next_at = now + self.every

    def _next_expiry(self) -> float:
        with self._lock:
            pending = [m for call, (_, m) in self._inflight.items() if call not in self._timed_out]
        return min(pending, default=math.inf) + self.timeout

    def _expire(self, now: float) -> None:
        """Record calls running longer than ``timeout`` as failures, at their send time."""
        with self._lock:
            late = [
                (call, wall)
                for call, (wall, mono) in self._inflight.items()
                if call not in self._timed_out and now - mono >= self.timeout
            ]
            self._timed_out.update(call for call, _ in late)
        for _, wall in late:
            error = f"Timeout: no answer within {self.timeout:g}s"
            self.timeline.add_operation(wall, self.timeout, False, self.probe.name, self.source, error)

    def _work(self) -> None:
        while (call := self._queue.get()) is not None:
            with self._lock:
                self._inflight[call] = (time.time(), time.monotonic())
            start, latency, ok, error = _probes.run_once(self.probe)
            with self._lock:
                del self._inflight[call]
                late = call in self._timed_out
                self._timed_out.discard(call)
                self._idle += 1
            if not late:
                self.timeline.add_operation(start, latency, ok, self.probe.name, self.source, error)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5.0)
        for _ in self._workers:
            self._queue.put(None)
        deadline = time.monotonic() + self.timeout + 1.0
        for worker in self._workers:  # a call hung beyond its timeout is abandoned (daemon thread)
            worker.join(timeout=max(0.0, deadline - time.monotonic()))

    def in_flight(self) -> frozenset[int]:
        """The calls sent and not yet answered nor timed out: their outcome is still to come."""
        with self._lock:
            return frozenset(call for call in self._inflight if call not in self._timed_out)

    def answered(self, calls: frozenset[int]) -> bool:
        """Whether every one of ``calls`` has answered or timed out (its evidence is on the timeline)."""
        return not (calls & self.in_flight())

    @property
    def running(self) -> bool:
        return self._thread.is_alive()
