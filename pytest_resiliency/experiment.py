"""The per-test ``experiment``: owns the timeline; ties faults, monitors, stop conditions and ledger.

The plugin creates one per test that uses the ``experiment`` fixture (or carries the
``resiliency`` marker), binds it in :mod:`pytest_resiliency.context` so that faults used as
plain context managers report to it, and calls :meth:`Experiment.finish` after the test
body: leftover faults are reverted, recovery is awaited, evidence sources stopped.
Evidence reaches the timeline only through the experiment's ``record_*`` methods and the
monitors it starts; nothing else writes into it.
"""

from __future__ import annotations

import dataclasses
import inspect
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from . import context as _context
from . import probes as _probes
from . import waiting
from .budget import Budget, Criteria
from .errors import ConfigError
from .measure import LedgerResult, Measurement, measure, verify_ledger
from .monitors import Monitor
from .timeline import DEFAULT_MAX_OPERATIONS, Timeline
from .validate import count, duration, shown
from .verdict import Verdict, judge

if TYPE_CHECKING:
    from .faults.base import Fault


def current_experiment() -> Experiment | None:
    """The experiment of the test running in this process, if any (:func:`pytest_resiliency.context.experiment`)."""
    return _context.experiment()


def set_current(experiment: Experiment | None) -> None:
    """Deprecated: use :func:`pytest_resiliency.context.bind_experiment`."""
    _context.bind_experiment(experiment)


class Source(Protocol):
    """Something that produces evidence until stopped (a monitor, a locust run)."""

    def stop(self) -> None: ...


class Hooks(Protocol):
    def fault_injected(self, fault: Fault, experiment: Experiment) -> None: ...
    def fault_reverted(self, fault: Fault, experiment: Experiment) -> None: ...


class StopCondition:
    """A predicate polled while any fault is active; when it returns True the experiment aborts."""

    def __init__(self, experiment: Experiment, condition: Callable[[], Any], every: float, name: str) -> None:
        self.experiment = experiment
        self.condition = condition
        self.every = every
        self.name = name
        self.tripped_at: float | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"resiliency-stop-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self.every):
            if not self.experiment.active_faults:
                continue
            try:
                tripped = bool(self.condition())
                reason = f"stop condition {self.name!r} tripped"
            except Exception as exc:  # a broken condition must stop the fault, not be ignored
                tripped = True
                reason = f"stop condition {self.name!r} raised {type(exc).__name__}: {exc}"
            if tripped:
                self.tripped_at = time.time()
                self.experiment.abort(reason)
                return

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=max(5.0, self.every * 2))


class Experiment:
    """One test's experiment. Created by the plugin; reach it through the ``experiment`` fixture."""

    def __init__(
        self,
        nodeid: str,
        budget: Budget | None = None,
        criteria: Criteria | None = None,
        hooks: Hooks | None = None,
        max_operations: int = DEFAULT_MAX_OPERATIONS,
    ) -> None:
        self.nodeid = nodeid
        self.budget = budget or Budget()
        self.criteria = criteria or Criteria()
        self.timeline = Timeline(max_operations)
        self.started_at = time.time()
        self.aborted: str | None = None
        self.ledger: LedgerResult | None = None
        self.attachments: dict[str, Any] = {}
        self._hooks = hooks
        self._faults: list[Fault] = []
        self._sources: list[Source] = []
        self._stop_conditions: list[StopCondition] = []
        self._lock = threading.RLock()

    # -- faults ------------------------------------------------------------------

    def inject(self, fault: Fault) -> Fault:
        """Inject ``fault`` now and revert it at the end of the test at the latest."""
        return fault.inject(recorder=self)

    def fault_injected(self, fault: Fault) -> None:
        assert fault.record is not None
        with self._lock:
            if fault not in self._faults:
                self._faults.append(fault)
        self.timeline.fault_injected(fault.record)
        if self._hooks is not None:
            self._hooks.fault_injected(fault, self)

    def fault_reverted(self, fault: Fault, at: float, error: str | None) -> None:
        assert fault.record is not None
        self.timeline.fault_reverted(fault.record, at, error)
        if self._hooks is not None:
            self._hooks.fault_reverted(fault, self)

    def fault_expired(self, fault: Fault, at: float) -> None:
        """A fault's watchdog reverted it after its ``max_duration`` (a mark on the timeline)."""
        self.timeline.mark(at, "fault-expired", fault.name, max_duration=fault.max_duration)

    @property
    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    @property
    def active_faults(self) -> list[Fault]:
        return [f for f in self.faults if f.active]

    def revert_all(self) -> list[str]:
        """Revert every active fault, newest first; returns the errors instead of stopping at one."""
        errors = []
        for fault in reversed(self.active_faults):
            try:
                fault.revert()
            except Exception as exc:
                errors.append(f"{fault.describe()}: {type(exc).__name__}: {exc}")
        return errors

    # -- evidence ----------------------------------------------------------------

    def monitor(
        self,
        probe: _probes.Probe | Callable[[], Any],
        every: float | str = "50ms",
        name: str | None = None,
        concurrency: int = 4,
        timeout: float | str | None = None,
    ) -> Monitor:
        """Fire ``probe`` every ``every`` (open loop) until the end of the test; each outcome is evidence.

        Up to ``concurrency`` calls run at once, so one hung call never delays the next; a
        call running longer than ``timeout`` (default: the larger of 1 s and ``every``) is a
        failure. Returns the :class:`Monitor` (``stop()`` ends it early).
        """
        period = duration(every, "experiment.monitor: every", positive=True)
        count(concurrency, "experiment.monitor: concurrency", 1)
        limit = None if timeout is None else duration(timeout, "experiment.monitor: timeout", positive=True)
        checked = _probes.as_probe(probe)
        monitor = Monitor(self.timeline, checked, period, name or checked.name, concurrency, limit)
        self.add_source(monitor)
        return monitor

    def add_source(self, source: Source) -> None:
        """Register something that must be stopped when the test ends (the load does this)."""
        with self._lock:
            self._sources.append(source)

    def record_operation(
        self,
        start: float,
        latency: float,
        ok: bool,
        name: str = "",
        source: str = "custom",
        error: str | None = None,
    ) -> None:
        """Add evidence you gathered yourself (a client of your own, a log line)."""
        self.timeline.add_operation(start, latency, ok, name, source, error)

    def record_write(self, key: str, start: float, ack: float | None, status: str) -> None:
        """Add a ledger entry: ``status`` is ``ok``, ``fail`` or ``indeterminate``."""
        self.timeline.add_write(key, start, ack, status)

    def attach(self, key: str, value: Any) -> None:
        """Attach something for the reports (a log tail, locust's stats).

        ``value`` may be a callable: it is called once when the test's payload is built,
        after the load has stopped, so what it returns is final. Builtins only.
        """
        with self._lock:
            self.attachments[key] = value

    def resolved_attachments(self) -> dict[str, Any]:
        """The attachments with callables called; a failing one is reported, not raised."""
        with self._lock:
            items = list(self.attachments.items())
        resolved = {}
        for key, value in items:
            try:
                resolved[key] = value() if callable(value) else value
            except Exception as exc:
                resolved[key] = f"<attachment failed: {type(exc).__name__}: {exc}>"
        return resolved

    def mark(self, name: str, at: float | None = None, **detail: Any) -> None:
        """Put external truth on the timeline (a server log's "ready", "leader elected").

        Marks are drawn on the report's chart and kept in the journal; they never change the
        measurement. ``at`` defaults to now (wall-clock seconds, like every timeline time).
        """
        if not isinstance(name, str) or not name:
            raise ConfigError(f"experiment.mark: name must be a non-empty string, got {shown(name)}")
        self.timeline.mark(time.time() if at is None else float(at), "mark", name, **detail)

    def record_alert(self, name: str, at: float | None = None) -> None:
        """An alert fired (held against ``alert_within``)."""
        self.timeline.mark(time.time() if at is None else at, "alert", name)

    def record_event(self, kind: str, name: str, at: float | None = None, **detail: Any) -> None:
        """A plugin event for the reports (``aws-call``, ``targets-resolved``, ``load-died``...).

        Like :meth:`mark` (drawn on the chart, kept in the journal, never measured), with a
        ``kind`` of its own; evidence sources call this instead of writing into the timeline.
        """
        self.timeline.mark(time.time() if at is None else at, kind, name, **detail)

    def stop_when(
        self, condition: Callable[[], Any], every: float | str = "100ms", name: str | None = None
    ) -> StopCondition:
        """Abort the experiment (revert faults, test ERROR) when ``condition()`` is true while a fault is active."""
        if not callable(condition):
            raise ConfigError(f"experiment.stop_when needs a callable, got {type(condition).__name__}")
        period = duration(every, "experiment.stop_when: every", positive=True)
        stop = StopCondition(self, condition, period, name or str(getattr(condition, "__name__", "condition")))
        with self._lock:
            self._stop_conditions.append(stop)
        return stop

    def abort(self, reason: str) -> None:
        """Revert every fault and mark the experiment aborted: the test becomes an ERROR."""
        with self._lock:
            if self.aborted is None:
                self.aborted = reason
        self.timeline.mark(time.time(), "aborted", reason)
        errors = self.revert_all()
        if errors:
            self.aborted = f"{reason}; revert failed: {'; '.join(errors)}"

    # -- recovery and writes -----------------------------------------------------

    @property
    def last_injection(self) -> float | None:
        injected = [f.record.injected_at for f in self.faults if f.record is not None]
        return max(injected, default=None)

    def recovered(self) -> bool:
        """Whether the live evidence already shows recovery after the last fault.

        True when the recovery criteria hold, or when the last fault caused no failure for
        a whole ``recovery_window`` of evidence (nothing to recover from).
        """
        return self.timeline.recovery_state().settled(self.criteria.successes, self.criteria.window)

    def evidence_may_come(self) -> bool:
        """False once every registered evidence source has stopped: waiting cannot help then.

        With no registered source (evidence recorded by hand) it cannot be known: True.
        """
        with self._lock:
            sources = list(self._sources)
        return not sources or any(getattr(source, "running", True) for source in sources)

    def wait_recovered(self, timeout: float | str | None = None, poll: float = 0.02) -> bool:
        """Block until the recovery criteria hold after the last fault, or the deadline passes.

        The deadline is the earlier of ``timeout`` from now and the marker's ``recovery_timeout``
        after the last injection. Returns whether recovery was seen; the verdict, not this
        call, decides whether the test passes.
        """
        now = time.time()
        deadline = now + (self.criteria.timeout if timeout is None else duration(timeout, "timeout"))
        last = self.last_injection
        if last is not None:
            deadline = min(deadline, last + self.criteria.timeout + self.criteria.window)

        def hopeless() -> bool:
            return bool(self.aborted) or not self.evidence_may_come()

        def remaining() -> float:
            return max(0.0, deadline - time.time())

        def recovered_for_good() -> bool:
            """Recovered, and still so once every call in flight at that moment has answered.

            A call sent into the fault may fail after the criteria first hold (a hung probe, a
            slow error): its failure belongs to the evidence, so it is awaited (bounded by the
            monitor's timeout) and the criteria are checked again.
            """
            if not self.recovered():
                return False
            pending = [(m, m.in_flight()) for m in self._monitors()]
            if any(calls for _, calls in pending):
                waiting.poll(lambda: all(m.answered(calls) for m, calls in pending), remaining(), poll)
            return self.recovered()

        # Polled: the timeline has no "changed" event (evidence arrives from many threads and processes).
        return bool(waiting.poll(recovered_for_good, remaining(), poll, give_up=hopeless)) or self.recovered()

    def _monitors(self) -> list[Monitor]:
        with self._lock:
            return [source for source in self._sources if isinstance(source, Monitor)]

    def verify_writes(self, reader: Callable[..., Iterable[str]]) -> LedgerResult:
        """Read the written keys back and classify the ledger (lost / recovered / unexpected).

        ``reader(keys)`` gets every key the ledger holds and returns those present; a
        reader that takes no argument returns every key the store holds.
        """
        evidence = self.timeline.snapshot()
        keys = sorted(set(evidence.write_keys))
        try:
            takes_keys = bool(inspect.signature(reader).parameters)
        except (TypeError, ValueError):
            takes_keys = True
        present = set(reader(keys) if takes_keys else reader())
        injections = [f.injected_at for f in evidence.faults]
        ledger = verify_ledger(evidence, present, injections)
        with self._lock:
            self.ledger = ledger
        return ledger

    # -- results -----------------------------------------------------------------

    def measure(self, source: str | None = None) -> Measurement:
        """The measurement so far, for assertions of your own.

        The ledger is the one classified by :meth:`verify_writes`: writes acknowledged after
        the read-back (load still running) were never read back, so they are not "lost".
        """
        measurement = measure(self.timeline.snapshot(), self.criteria, None, source)
        return dataclasses.replace(measurement, ledger=self.ledger) if self.ledger else measurement

    def verdict(self, measurement: Measurement | None = None) -> Verdict:
        return judge(measurement or self.measure(), self.budget)

    def finish(self, settle: bool) -> list[str]:
        """End of the test body: revert, wait for recovery (if ``settle``), stop every source.

        Returns revert errors so the caller can report them; never raises.
        """
        errors = self.revert_all()
        if settle and self.faults and self._sources and not self.aborted and self.evidence_may_come():
            self.wait_recovered()
        with self._lock:
            sources, self._sources = self._sources[::-1], []
            stops, self._stop_conditions = self._stop_conditions, []
        for stop in stops:
            stop.stop()
        for source in sources:
            try:
                source.stop()
            except Exception as exc:
                errors.append(f"stopping {source!r}: {type(exc).__name__}: {exc}")
        return errors
