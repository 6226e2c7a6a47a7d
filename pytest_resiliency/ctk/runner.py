"""Run one Chaos Toolkit experiment strictly, on chaoslib's own activity and tolerance code.

``chaos run`` swallows a failed action (exit 0), skips rollbacks on Ctrl-C and never
enforces an activity's ``timeout``. This runner keeps chaoslib for what it does well
(validation, configuration and secrets, providers, ``execute_activity``, tolerance
checking with ``within_tolerance``) and owns the control flow:

* the steady-state hypothesis is checked before and after the method; every hypothesis
  probe is an operation on the test's timeline (ok = ran *and* within tolerance);
* every method action that is not one of our providers is a fault on the timeline
  (``t_inject`` immediately before it runs, reverted after the rollbacks);
* each activity runs in a daemon thread and is abandoned (failed) when its ``timeout``
  passes;
* once the method has started, the rollbacks always run: after a failure, a deviation,
  a timeout or Ctrl-C (a second Ctrl-C is held until they are done);
* a failed activity, a deviated hypothesis or a failed rollback is collected in
  :attr:`StrictRun.failures` for the item to fail the test with.

chaoslib is imported only here, and this module only when an experiment item runs.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import json
import platform
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..faults.base import Fault

if TYPE_CHECKING:
    from ..experiment import Experiment
    from .spec import Spec

SOURCE = "ctk"
OUR_PROVIDERS = "pytest_resiliency.ctk."
MAX_RUNS = 100  # journal entries kept per section: the journal rides on every report
MAX_TEXT = 2000  # characters kept of an output or a traceback (the end: that is where the error is)
ACTION_MAX_DURATION = 24 * 3600.0  # an action's fault ends with the rollbacks, not by a watchdog


class CtkError(RuntimeError):
    """The experiment cannot run (invalid, or chaoslib refused it); the message names the file."""


class SteadyStateNotMet(RuntimeError):
    """The hypothesis did not hold *before* the method: nothing was injected, the test is an ERROR."""


class ActivityTimeout(Exception):
    """Raised into an activity's thread when its ``timeout`` passed (best effort: Python code only)."""


class ActivityFault(Fault):
    """A Chaos Toolkit action as a fault on the timeline: it acts in the method, the rollbacks undo it."""

    kind = "ctk-action"

    def __init__(self, activity: dict[str, Any]) -> None:
        super().__init__(name=str(activity.get("name", "action")), max_duration=ACTION_MAX_DURATION)
        provider = activity.get("provider") or {}
        where = provider.get("module", "") + ("." if provider.get("module") else "") + str(provider.get("func", ""))
        where = where or provider.get("url") or provider.get("path") or ""
        self._target = f"{provider.get('type', '?')} {where}".strip()
        self._arguments = provider.get("arguments", {})

    @property
    def target(self) -> str | None:
        return self._target

    @property
    def lock_key(self) -> str | None:
        return None  # the action knows its own target; two experiments may run the same action

    def params(self) -> dict[str, Any]:
        return {**super().params(), "arguments": _text(json.dumps(self._arguments, default=str), 500)}

    def _inject(self) -> None:
        """Nothing: the action itself is executed by the runner right after ``t_inject``."""

    def _revert(self) -> None:
        """Nothing: the experiment's rollbacks are the revert."""


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _text(value: str, limit: int = MAX_TEXT) -> str:
    return value if len(value) <= limit else "[...] " + value[-limit:]


def _error_of(run: dict[str, Any]) -> str:
    lines = run.get("exception") or []
    text = "".join(lines).strip().splitlines()
    last = text[-1] if text else str(run.get("status"))
    return last.removeprefix("chaoslib.exceptions.ActivityFailed: ")


def _async_raise(thread: threading.Thread, exc: type[BaseException]) -> None:
    """Ask ``thread`` to raise ``exc`` at its next bytecode (chaoslib does the same on SIGUSR2)."""
    if thread.ident is None or not thread.is_alive():
        return
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(exc))


@contextlib.contextmanager
def _sigint_held() -> Iterator[None]:
    """Hold Ctrl-C while rollbacks run; re-raise it afterwards. Only the main thread can."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pending:
        raise KeyboardInterrupt


class StrictRun:
    """One run of one experiment, step by step: :meth:`prepare`, :meth:`before`, :meth:`method`,
    :meth:`after`, :meth:`rollback` (always, in a ``finally``), :meth:`close`."""

    def __init__(self, spec: Spec, experiment: Experiment) -> None:
        self.spec = spec
        self.doc: dict[str, Any] = copy.deepcopy(spec.experiment)
        self.experiment = experiment
        self.failures: list[str] = []
        self.method_started = False
        self.rolled_back = False
        self.configuration: dict[str, Any] = {}
        self.secrets: dict[str, Any] = {}
        self._faults: list[ActivityFault] = []
        self._lock = threading.Lock()
        self._started = time.time()
        self._controls = False
        self.journal: dict[str, Any] = {
            "chaoslib-version": None,
            "platform": platform.platform(),
            "node": platform.node(),
            "experiment": self.doc,
            "start": _now_iso(),
            "status": "running",
            "deviated": False,
            "steady_states": {"before": None, "after": None, "during": []},
            "run": [],
            "rollbacks": [],
        }

    # -- set-up ------------------------------------------------------------------

    def prepare(self) -> None:
        """Validate with chaoslib, load configuration and secrets, cache refs, start controls."""
        import chaoslib  # type: ignore[import-untyped,unused-ignore]
        from chaoslib.caching import cache_activities, clear_cache  # type: ignore[import-untyped,unused-ignore]
        from chaoslib.configuration import load_configuration, load_dynamic_configuration  # type: ignore[import-untyped,unused-ignore]
        from chaoslib.control import initialize_controls  # type: ignore[import-untyped,unused-ignore]
        from chaoslib.exceptions import ChaosException  # type: ignore[import-untyped,unused-ignore]
        from chaoslib.experiment import ensure_experiment_is_valid  # type: ignore[import-untyped,unused-ignore]
        from chaoslib.secret import load_secrets  # type: ignore[import-untyped,unused-ignore]

        self.journal["chaoslib-version"] = chaoslib.__version__
        clear_cache()
        try:
            ensure_experiment_is_valid(self.doc)
            self.configuration = load_configuration(self.doc.get("configuration", {})) or {}
            self.secrets = load_secrets(self.doc.get("secrets", {}), self.configuration) or {}
            self.configuration = load_dynamic_configuration(self.configuration, self.secrets) or {}
            cache_activities(self.doc)
            initialize_controls(self.doc, self.configuration, self.secrets)
            self._controls = True
        except (ChaosException, ValueError, TypeError, KeyError) as exc:
            raise CtkError(f"{self.spec.path}: invalid experiment: {type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        """Clean chaoslib's process-wide state (controls, the activity cache)."""
        from chaoslib.caching import clear_cache  # type: ignore[import-untyped,unused-ignore]
        from chaoslib.control import cleanup_controls  # type: ignore[import-untyped,unused-ignore]

        if self._controls:
            self._controls = False
            with contextlib.suppress(Exception):
                cleanup_controls(self.doc)
        clear_cache()

    # -- activities --------------------------------------------------------------

    def _resolve(self, activity: dict[str, Any]) -> dict[str, Any]:
        ref = activity.get("ref")
        if not ref:
            return activity
        from chaoslib.caching import lookup_activity  # type: ignore[import-untyped,unused-ignore]

        found = lookup_activity(ref)
        if not found:
            raise CtkError(f"{self.spec.path}: referenced activity {ref!r} not found")
        return dict(found)

    def _pause(self, pauses: dict[str, Any], which: str) -> None:
        seconds = pauses.get(which)
        if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and seconds > 0:
            time.sleep(float(seconds))  # in this thread: Ctrl-C interrupts it

    def execute(self, activity: dict[str, Any], on_start: Callable[[], Any] | None = None) -> dict[str, Any]:
        """Run one activity through chaoslib's ``execute_activity``, its ``timeout`` enforced.

        Pauses are slept here, outside the timeout; ``on_start`` is called immediately
        before the activity acts (an action's ``t_inject``).
        """
        from chaoslib import substitute  # type: ignore[import-untyped,unused-ignore]
        from chaoslib.activity import execute_activity  # type: ignore[import-untyped,unused-ignore]

        activity = self._resolve(activity)
        pauses = substitute(activity.get("pauses", {}), self.configuration, self.secrets) or {}
        bare = {k: v for k, v in activity.items() if k not in ("pauses", "background")}
        timeout = activity.get("timeout")
        self._pause(pauses, "before")
        holder: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                holder["run"] = execute_activity(self.doc, bare, self.configuration, self.secrets, None)
            except BaseException as exc:  # a provider error chaoslib does not catch (process, http, ours)
                holder["error"] = traceback.format_exception_only(type(exc), exc)
            finally:
                done.set()

        start = time.time()
        began = time.perf_counter()
        if on_start is not None:
            on_start()
        thread = threading.Thread(target=work, name=f"resiliency-ctk-{activity.get('name')}", daemon=True)
        thread.start()
        try:
            finished = done.wait(None if timeout is None else float(timeout))
        except BaseException:
            self._note_interrupted(activity, start, time.perf_counter() - began)
            raise
        latency = time.perf_counter() - began
        if finished and "run" in holder:
            run: dict[str, Any] = holder["run"]
        else:
            run = {"status": "failed", "output": None}
            if finished:
                run["exception"] = holder.get("error", ["unknown error\n"])
            else:
                _async_raise(thread, ActivityTimeout)
                run["exception"] = [f"ActivityTimeout: {activity.get('name')!r} timed out after {timeout}s\n"]
        run.update(
            activity=activity,
            start=datetime.fromtimestamp(start, UTC).isoformat(),
            end=datetime.fromtimestamp(start + latency, UTC).isoformat(),
            duration=latency,
            t_start=start,
        )
        self._pause(pauses, "after")
        return run

    def _note_interrupted(self, activity: dict[str, Any], start: float, latency: float) -> None:
        run = {
            "activity": activity,
            "status": "interrupted",
            "output": None,
            "start": datetime.fromtimestamp(start, UTC).isoformat(),
            "duration": latency,
        }
        with self._lock:
            self.journal["run"].append(run)

    def _record(self, run: dict[str, Any], ok: bool, error: str | None) -> None:
        """A probe execution is an operation on the timeline (the evidence RTO is measured from)."""
        name = str(run["activity"].get("name", "probe"))
        self.experiment.record_operation(run["t_start"], run["duration"], ok, name, SOURCE, None if ok else error)

    # -- hypothesis ----------------------------------------------------------------

    def _tolerance(self, probe: dict[str, Any], run: dict[str, Any]) -> tuple[bool, str | None]:
        """chaoslib's own ``within_tolerance`` on the probe's output; a raise is 'not met'."""
        from chaoslib import substitute  # type: ignore[import-untyped,unused-ignore]
        from chaoslib.hypothesis import within_tolerance  # type: ignore[import-untyped,unused-ignore]

        name = probe.get("name")
        if run["status"] != "succeeded":
            return False, f"probe {name!r} failed: {_error_of(run)}"
        tolerance = copy.deepcopy(probe.get("tolerance"))
        if isinstance(tolerance, str):
            tolerance = substitute(tolerance, self.configuration, self.secrets)
        if isinstance(tolerance, dict) and tolerance.get("type") == "probe":
            tolerance.setdefault("provider", {}).setdefault("arguments", {})
        try:
            met = within_tolerance(tolerance, run["output"], configuration=self.configuration, secrets=self.secrets)
        except Exception as exc:
            return False, f"probe {name!r}: tolerance check raised {type(exc).__name__}: {exc}"
        if not met:
            shown = _text(repr(run["output"]), 200)
            return False, f"probe {name!r} returned {shown}, outside its tolerance {json.dumps(tolerance, default=str)}"
        return True, None

    def hypothesis(self, when: str) -> tuple[dict[str, Any] | None, str | None]:
        """Check every hypothesis probe, stopping at the first not met (as chaoslib does)."""
        hypo = self.doc.get("steady-state-hypothesis") or {}
        probes = hypo.get("probes") or []
        if not probes:
            return None, None
        state: dict[str, Any] = {"steady_state_met": None, "probes": []}
        self.journal["steady_states"][when] = state
        for probe in probes:
            probe = self._resolve(probe)
            run = self.execute(probe)
            ok, why = self._tolerance(probe, run)
            run["tolerance_met"] = ok
            state["probes"].append(run)
            self._record(run, ok, why)
            if not ok:
                state["steady_state_met"] = False
                return state, why
        state["steady_state_met"] = True
        return state, None

    def before(self) -> None:
        """The hypothesis before the method; raises :class:`SteadyStateNotMet` (an ERROR)."""
        state, why = self.hypothesis("before")
        if state is not None and not state["steady_state_met"]:
            self.journal["status"] = "failed"
            raise SteadyStateNotMet(f"steady state not met before the method (nothing injected): {why}")

    def after(self) -> None:
        state, why = self.hypothesis("after")
        if state is not None and not state["steady_state_met"]:
            self.journal["deviated"] = True
            self.failures.append(f"steady state deviated after the method: {why}")

    # -- method and rollbacks ------------------------------------------------------

    def _ours(self, activity: dict[str, Any]) -> bool:
        provider = activity.get("provider") or {}
        return provider.get("type") == "python" and str(provider.get("module", "")).startswith(OUR_PROVIDERS)

    def _method_activity(self, activity: dict[str, Any]) -> bool:
        activity = self._resolve(activity)
        fault: ActivityFault | None = None

        def start() -> None:
            nonlocal fault
            if activity.get("type") == "action" and not self._ours(activity):
                fault = ActivityFault(activity)
                with self._lock:
                    self._faults.append(fault)
                self.experiment.inject(fault)

        run = self.execute(activity, on_start=start)
        with self._lock:
            self.journal["run"].append(run)
        ok = bool(run["status"] == "succeeded")
        if activity.get("type") == "probe":
            self._record(run, ok, _error_of(run))
        if fault is not None and not self.doc.get("rollbacks"):
            fault.revert()  # nothing will undo it: its effect is the action itself
        if not ok:
            with self._lock:
                self.failures.append(f"method {activity.get('type')} {activity.get('name')!r} failed: {_error_of(run)}")
        return ok

    def method(self) -> None:
        """Run the method in order; stop at the first failed activity (background ones are awaited)."""
        self.method_started = True
        background: list[threading.Thread] = []
        for activity in self.doc.get("method", []):
            if activity.get("background"):
                thread = threading.Thread(
                    target=self._method_activity, args=(activity,), name="resiliency-ctk-background", daemon=True
                )
                thread.start()
                background.append(thread)
                continue
            if not self._method_activity(activity):
                break
        for thread in background:
            thread.join()  # each enforces its own timeout; Ctrl-C interrupts the join

    def rollback(self) -> None:
        """Every rollback, in order, whatever happened before; then the actions' faults end."""
        if self.rolled_back or not self.method_started:
            return
        self.rolled_back = True
        with _sigint_held():
            for activity in self.doc.get("rollbacks", []):
                run = self.execute(activity)
                self.journal["rollbacks"].append(run)
                if run["status"] != "succeeded":
                    self.failures.append(f"rollback {run['activity'].get('name')!r} failed: {_error_of(run)}")
            for fault in reversed(self._faults):
                fault.revert()

    def finish(self, status: str) -> None:
        self.journal["status"] = status
        self.journal["end"] = _now_iso()
        self.journal["duration"] = time.time() - self._started

    # -- report --------------------------------------------------------------------

    def bounded_journal(self) -> dict[str, Any]:
        """The CTK journal for reports: at most ``MAX_RUNS`` runs a section, long text cut."""
        doc = json.loads(json.dumps(self.journal, default=str))

        def runs(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
            kept = items[:MAX_RUNS]
            for run in kept:
                run.pop("t_start", None)
                if run.get("output") is not None:
                    text = json.dumps(run["output"], default=str)
                    if len(text) > MAX_TEXT:
                        run["output"] = _text(text)
                if run.get("exception"):
                    run["exception"] = _text("".join(run["exception"]))
            if len(items) > MAX_RUNS:
                kept.append({"status": "cut", "output": f"{len(items) - MAX_RUNS} more runs cut"})
            return kept

        doc["run"] = runs(doc["run"])
        doc["rollbacks"] = runs(doc["rollbacks"])
        for when in ("before", "after"):
            state = doc["steady_states"].get(when)
            if state:
                state["probes"] = runs(state["probes"])
        result: dict[str, Any] = doc
        return result
