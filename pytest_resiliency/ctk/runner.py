"""Run one Chaos Toolkit experiment strictly, on chaoslib's own activity, control and tolerance code.

``chaos run`` swallows a failed action (exit 0), skips rollbacks on Ctrl-C and never
enforces an activity's ``timeout``. This runner keeps chaoslib for what it does well
(validation, configuration and secrets, providers, ``execute_activity``, controls,
tolerance checking with ``within_tolerance``) and owns the control flow:

* every control hook chaoslib defines is called at the same points as ``chaos run``
  (experiment, hypothesis, method, rollback and activity levels, before and after, with the
  same context and state); a control that raises ``InterruptExecution``, or a SIGUSR1/SIGUSR2
  (``chaoslib.exit``, what a chaostoolkit-addons safeguard sends), interrupts the experiment;
* the ``runtime`` block (or the ``--resiliency-ctk-*`` options) chooses when the hypothesis is checked
  (before, after, during the method every ``frequency`` seconds, ``fail_fast``) and when
  rollbacks run; every hypothesis probe is an operation on the test's timeline;
* every method action that is not one of our providers is a fault on the timeline
  (``t_inject`` immediately before it runs, reverted after the rollbacks);
* each activity runs in a daemon thread and is abandoned (failed) when its ``timeout``
  passes; a process activity runs in a process group of its own, ended with it;
* once the method has started the rollbacks run (unless the runtime strategy says
  otherwise): after a failure, a deviation, a timeout, an interruption or Ctrl-C (further
  Ctrl-C are swallowed until they are done);
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
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import ConfigError
from ..faults.base import Fault
from . import process

if TYPE_CHECKING:
    from ..experiment import Experiment
    from .options import CtkOptions
    from .spec import Runtime, Spec

SOURCE = "ctk"
OUR_PROVIDERS = "pytest_resiliency.ctk."
SSH = "steady-state-hypothesis"
MAX_RUNS = 100  # journal entries kept per section: the journal rides on every report
MAX_TEXT = 2000  # characters kept of an output or a traceback (the end: that is where the error is)
SHOWN = 240  # characters of a probe's output in a failure line
ACTION_MAX_DURATION = 24 * 3600.0  # an action's fault ends with the rollbacks, not by a watchdog
REDACTED = "[redacted]"


class CtkError(ConfigError, RuntimeError):
    """The experiment cannot run (invalid, or chaoslib refused it); the message names the file."""


class SteadyStateNotMet(RuntimeError):
    """The hypothesis did not hold *before* the method: nothing was injected, the test is an ERROR."""


class ActivityTimeout(Exception):
    """Raised into an activity's thread when its ``timeout`` passed (best effort: Python code only)."""


class ExperimentInterrupted(BaseException):
    """A safeguard or a control interrupted the experiment (not an ``Exception``: no provider swallows it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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


def _middle(value: str, limit: int = SHOWN) -> str:
    """Head and tail kept: the start of an output (a status) and its end (an error) both matter."""
    if len(value) <= limit:
        return value
    half = limit // 2
    return f"{value[:half]} [... {len(value) - 2 * half} characters ...] {value[-half:]}"


def shown(output: Any, tolerance: Any) -> str:
    """What a failure line shows of a probe's output: first the part the tolerance judged.

    A process or HTTP probe returns ``{"status": ..., "stdout"/"body": ...}``: a tolerance with
    a ``target`` judges that entry, an integer (or list of integers) judges the status; the
    line leads with it, and long text keeps its head and its tail.
    """
    target = tolerance.get("target") if isinstance(tolerance, dict) else None
    if isinstance(output, dict) and isinstance(target, str) and target in output:
        return f"{target} {_middle(repr(output[target]))}"
    judged_status = isinstance(tolerance, int) and not isinstance(tolerance, bool)
    judged_status = judged_status or (isinstance(tolerance, list) and all(isinstance(t, int) for t in tolerance))
    if isinstance(output, dict) and "status" in output and judged_status:
        rest = {k: v for k, v in output.items() if k != "status"}
        text = f"status {output['status']!r}"
        return text + (f" ({_middle(json.dumps(rest, default=str))})" if rest else "")
    return _middle(repr(output))


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
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
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


class Interrupter:
    """SIGUSR1/SIGUSR2 while an experiment item runs: ``chaoslib.exit``'s way to stop an experiment.

    ``chaos run`` turns them into ``SystemExit``; in pytest that (or the default action,
    which terminates the process) would end the whole session and lose every report. Here
    they interrupt this experiment only: the reason is recorded and, while the experiment is
    in a phase that may stop (``armed``), :class:`ExperimentInterrupted` is raised in the
    main thread; the rollbacks then run (also on SIGUSR2, where ``chaos run`` skips them).
    """

    SIGNALS: ClassVar[dict[str, str]] = {"SIGUSR1": "exit_gracefully", "SIGUSR2": "exit_ungracefully"}

    def __init__(self, notify: Callable[[str], None] | None = None) -> None:
        self.notify = notify or (lambda text: sys.stderr.write(text + "\n"))
        self.reason: str | None = None
        self.armed = False
        self.swallowed_sigint = 0
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers (items always run there, also under xdist)
        for name in self.SIGNALS:
            number = getattr(signal, name, None)
            if number is not None:
                self._previous[number] = signal.signal(number, self._on_signal)

    def restore(self) -> None:
        previous, self._previous = self._previous, {}
        for number, handler in previous.items():
            signal.signal(number, handler)

    def hold_sigint(self) -> None:
        """Swallow further Ctrl-C (until :meth:`restore`): the rollbacks and the reports must finish."""
        if threading.current_thread() is not threading.main_thread() or signal.SIGINT in self._previous:
            return

        def swallow(signum: int, frame: Any) -> None:
            self.swallowed_sigint += 1
            self.notify("resiliency: Ctrl-C again ignored: the experiment's rollbacks are running")

        self._previous[signal.SIGINT] = signal.signal(signal.SIGINT, swallow)

    @property
    def holding_sigint(self) -> bool:
        return signal.SIGINT in self._previous

    def interrupt(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    def _on_signal(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        first = self.reason is None
        self.interrupt(f"{name} received (chaoslib.exit.{self.SIGNALS.get(name, '?')}){_safeguard()}")
        if first and self.armed:
            self.armed = False
            raise ExperimentInterrupted(str(self.reason))


def _safeguard() -> str:
    """Which chaostoolkit-addons safeguard tripped, when one did."""
    module = sys.modules.get("chaosaddons.controls.safeguards")
    guardian = getattr(module, "guardian", None)
    name = getattr(guardian, "triggered_by", None)
    return f": safeguard {name!r} was not within its tolerance" if name else ""


def _await_safeguard_prechecks() -> None:
    """A chaostoolkit-addons safeguard judges its pre-checks in its own threads just after the
    before-experiment control returns; wait for them, so a tripped one stops the run before
    the method (what ``chaos run`` intends), not at a random later point."""
    module = sys.modules.get("chaosaddons.controls.safeguards")
    pool = getattr(getattr(module, "guardian", None), "now", None)
    if pool is not None and hasattr(pool, "shutdown"):
        pool.shutdown(wait=True)  # nothing more is submitted to it after the pre-checks


def _join_safeguard() -> None:
    """A tripped safeguard signals from its own thread once the experiment ends: let it, while
    this item's handler is still installed (after it, SIGUSR1 would terminate pytest)."""
    module = sys.modules.get("chaosaddons.controls.safeguards")
    guardian = getattr(module, "guardian", None)
    thread = getattr(guardian, "interrupter", None)
    if isinstance(thread, threading.Thread) and thread.ident is not None:
        getattr(guardian, "wait_for_interruption", threading.Event()).set()
        thread.join(timeout=5.0)
        time.sleep(0)  # a signal it sent is handled here, in the main thread


def _reset_addons() -> None:
    """chaostoolkit-addons keeps per-process state that ``chaos run`` (one experiment a process)
    never resets; pytest runs many experiments in one process, so each starts afresh."""
    sync = sys.modules.get("chaosaddons.controls.synchronization")
    if sync is not None and hasattr(sync, "experiment_finished"):
        sync.experiment_finished.clear()
    guards = sys.modules.get("chaosaddons.controls.safeguards")
    if guards is not None and hasattr(guards, "Guardian"):
        guards.guardian = guards.Guardian()  # type: ignore[attr-defined]


def _leaves(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, bytes):
        yield value.decode("utf-8", "replace")
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def _redact_leaves(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _redact_leaves(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_leaves(v) for v in value]
    return REDACTED


def _replace_strings(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {k: _replace_strings(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_strings(v, secrets) for v in value]
    return value


class StrictRun:
    """One run of one experiment, step by step: :meth:`prepare`, :meth:`begin`, :meth:`before`,
    :meth:`method`, :meth:`after`, :meth:`rollback` (in a ``finally``), :meth:`end`, :meth:`close`."""

    def __init__(
        self,
        spec: Spec,
        experiment: Experiment,
        options: CtkOptions | None = None,
        interrupter: Interrupter | None = None,
    ) -> None:
        self.spec = spec
        self.doc: dict[str, Any] = copy.deepcopy(spec.experiment)
        self.experiment = experiment
        self.options = options
        self.runtime: Runtime = options.runtime(spec.runtime) if options is not None else spec.runtime
        self.interrupter = interrupter or Interrupter()
        self.failures: list[str] = []
        self.fail_fast_tripped: str | None = None
        self.during_deviations = 0
        self.method_started = False
        self.rolled_back = False
        self.configuration: dict[str, Any] = {}
        self.secrets: dict[str, Any] = {}
        self._faults: list[ActivityFault] = []
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._started = time.time()
        self._controls = False
        self._global_controls = False
        self._control: Any = None
        self._process_installed = False
        self.journal: dict[str, Any] = {
            "chaoslib-version": None,
            "platform": platform.platform(),
            "node": platform.node(),
            "experiment": self.doc,
            "runtime": self.runtime.as_dict(),
            "start": _now_iso(),
            "status": "running",
            "deviated": False,
            "steady_states": {"before": None, "after": None, "during": []},
            "run": [],
            "rollbacks": [],
        }

    @property
    def interrupted(self) -> str | None:
        return self.interrupter.reason

    # -- set-up ------------------------------------------------------------------

    def prepare(self, dry: bool = False) -> None:
        """Validate with chaoslib, load configuration and secrets (with the --resiliency-ctk-var values),
        cache refs, initialize controls (not in a dry run)."""
        import chaoslib  # type: ignore[import-untyped,unused-ignore]
        from chaoslib.caching import cache_activities, clear_cache  # type: ignore[import-untyped,unused-ignore]
        from chaoslib.configuration import load_configuration, load_dynamic_configuration  # type: ignore[import-untyped,unused-ignore]
        from chaoslib.control import initialize_controls, initialize_global_controls  # type: ignore[import-untyped,unused-ignore]
        from chaoslib.exceptions import ChaosException  # type: ignore[import-untyped,unused-ignore]
        from chaoslib.experiment import ensure_experiment_is_valid  # type: ignore[import-untyped,unused-ignore]
        from chaoslib.secret import load_secrets  # type: ignore[import-untyped,unused-ignore]

        self.journal["chaoslib-version"] = chaoslib.__version__
        config_vars = dict(self.options.config_vars) if self.options else {}
        secret_vars = dict(self.options.secret_vars) if self.options else {}
        clear_cache()
        control_files = self.options.control_files if self.options is not None and not dry else []
        try:
            if control_files:
                self._load_global_controls(control_files)  # chaos run loads them before the experiment
            ensure_experiment_is_valid(self.doc)
            self.configuration = load_configuration(self.doc.get("configuration", {}), config_vars) or {}
            self.secrets = load_secrets(self.doc.get("secrets", {}), self.configuration, secret_vars) or {}
            self.configuration = load_dynamic_configuration(self.configuration, self.secrets) or {}
            cache_activities(self.doc)
            if dry:
                return
            _reset_addons()
            process.install()
            self._process_installed = True
            if control_files:
                initialize_global_controls(self.doc, self.configuration, self.secrets, {})
            initialize_controls(self.doc, self.configuration, self.secrets)
            self._controls = True
        except (ChaosException, ValueError, TypeError, KeyError) as exc:
            raise CtkError(f"{self.spec.path}: invalid experiment: {type(exc).__name__}: {exc}") from None

    def _load_global_controls(self, files: list[str]) -> None:
        """``chaos run --control-file``: load them and apply their loader hooks to this experiment
        (initialized once configuration and secrets are known, they then apply at every level)."""
        from chaoslib.control import controls, load_global_controls  # type: ignore[import-untyped,unused-ignore]

        load_global_controls({}, files)
        self._global_controls = True
        with controls("loader", context=str(self.spec.path)) as control:
            control.with_state(self.doc)  # an after-loading control may change the experiment, as in chaos run

    def begin(self) -> None:
        """The experiment-level before controls (a safeguard's pre-checks run here)."""
        from chaoslib.control import Control  # type: ignore[import-untyped,unused-ignore]
        from chaoslib.exceptions import InterruptExecution  # type: ignore[import-untyped,unused-ignore]

        self._control = Control()
        try:
            self._control.begin("experiment", self.doc, self.doc, self.configuration, self.secrets)
        except InterruptExecution as exc:
            self.interrupter.interrupt(f"control interrupted the experiment: {exc}")
        _await_safeguard_prechecks()
        self._check_interrupted()

    def end(self) -> None:
        """The experiment-level after controls, with the journal as their state (once)."""
        control, self._control = self._control, None
        if control is None:
            return
        control.with_state(self.journal)
        with contextlib.suppress(Exception):
            control.end("experiment", self.doc, self.doc, self.configuration, self.secrets)

    def close(self) -> None:
        """End what is left (controls, process groups) and clean chaoslib's process-wide state."""
        from chaoslib.caching import clear_cache  # type: ignore[import-untyped,unused-ignore]
        from chaoslib.control import cleanup_controls  # type: ignore[import-untyped,unused-ignore]

        try:
            self.end()
            _join_safeguard()
            for thread in list(self._threads):
                _async_raise(thread, ActivityTimeout)
            process.end_all()
            if self._controls:
                self._controls = False
                with contextlib.suppress(Exception):
                    cleanup_controls(self.doc)
            if self._global_controls:
                from chaoslib.control import cleanup_global_controls  # type: ignore[import-untyped,unused-ignore]

                self._global_controls = False
                with contextlib.suppress(Exception):
                    cleanup_global_controls()
        finally:
            if self._process_installed:
                self._process_installed = False
                process.uninstall()
            clear_cache()

    def _check_interrupted(self) -> None:
        """Raise when a signal or a safeguard interrupted the experiment while nothing could raise."""
        if self.interrupted is None:
            reason = _safeguard()
            guards = sys.modules.get("chaosaddons.controls.safeguards")
            if reason and getattr(getattr(guards, "guardian", None), "was_triggered", False):
                self.interrupter.interrupt("chaostoolkit-addons" + reason)
        if self.interrupted is not None:
            raise ExperimentInterrupted(self.interrupted)

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

    def _abandon(self, thread: threading.Thread) -> str:
        """End an activity's process group (if it runs one) and raise into its thread."""
        proc = process.running_in(thread)
        ended = process.end_group(proc) if proc is not None and proc.poll() is None else None
        _async_raise(thread, ActivityTimeout)
        if ended:
            return ended
        return "abandoned (its thread is interrupted at its next Python instruction)"

    def execute(self, activity: dict[str, Any], on_start: Callable[[], Any] | None = None) -> dict[str, Any]:
        """Run one activity through chaoslib's ``execute_activity``, its ``timeout`` enforced.

        Pauses are slept here, outside the timeout; ``on_start`` is called immediately
        before the activity acts (an action's ``t_inject``).
        """
        from chaoslib import substitute  # type: ignore[import-untyped,unused-ignore]
        from chaoslib.activity import execute_activity  # type: ignore[import-untyped,unused-ignore]
        from chaoslib.exceptions import InterruptExecution  # type: ignore[import-untyped,unused-ignore]

        activity = self._resolve(activity)
        pauses = substitute(activity.get("pauses", {}), self.configuration, self.secrets) or {}
        bare = {k: v for k, v in activity.items() if k not in ("pauses", "background")}
        timeout = activity.get("timeout")
        self._pause(pauses, "before")
        holder: dict[str, Any] = {}
        done = threading.Event()
        strict = self.spec.fail_on_exit_status

        def work() -> None:
            try:
                with process.strict_status(strict):
                    holder["run"] = execute_activity(self.doc, bare, self.configuration, self.secrets, None)
            except InterruptExecution as exc:  # an activity-level control stopped the experiment
                holder["interrupt"] = str(exc)
            except BaseException as exc:  # a provider error chaoslib does not catch (process, http, ours)
                holder["error"] = traceback.format_exception_only(type(exc), exc)
            finally:
                done.set()

        start = time.time()
        began = time.perf_counter()
        if on_start is not None:
            on_start()
        thread = threading.Thread(target=work, name=f"resiliency-ctk-{activity.get('name')}", daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()
        try:
            finished = done.wait(None if timeout is None else float(timeout))
        except BaseException:
            self._note_interrupted(activity, start, time.perf_counter() - began, self._abandon(thread))
            raise
        finally:
            with self._lock:
                self._threads.discard(thread)
        latency = time.perf_counter() - began
        if "interrupt" in holder:
            self.interrupter.interrupt(f"control interrupted activity {activity.get('name')!r}: {holder['interrupt']}")
        if finished and "run" in holder:
            run: dict[str, Any] = holder["run"]
        else:
            run = {"status": "failed", "output": None}
            if finished:
                run["exception"] = holder.get("error", [f"ExperimentInterrupted: {self.interrupted}\n"])
            else:
                ended = self._abandon(thread)
                run["exception"] = [f"ActivityTimeout: {activity.get('name')!r} timed out after {timeout}s; {ended}\n"]
        run.update(
            activity=activity,
            start=datetime.fromtimestamp(start, UTC).isoformat(),
            end=datetime.fromtimestamp(start + latency, UTC).isoformat(),
            duration=latency,
            t_start=start,
        )
        self._pause(pauses, "after")
        return run

    def _note_interrupted(self, activity: dict[str, Any], start: float, latency: float, ended: str) -> None:
        run = {
            "activity": activity,
            "status": "interrupted",
            "output": None,
            "exception": [f"interrupted; {ended}\n"],
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
            judged = shown(run["output"], tolerance)
            return (
                False,
                f"probe {name!r} returned {judged}, outside its tolerance {json.dumps(tolerance, default=str)}",
            )
        return True, None

    def hypothesis(self, when: str) -> tuple[dict[str, Any] | None, str | None]:
        """Check every hypothesis probe, stopping at the first not met (as chaoslib does),
        inside the hypothesis-level controls."""
        from chaoslib.control import controls  # type: ignore[import-untyped,unused-ignore]

        hypo = self.doc.get(SSH) or {}
        probes = hypo.get("probes") or []
        if not probes:
            return None, None
        state: dict[str, Any] = {"steady_state_met": None, "probes": []}
        with self._lock:
            if when == "during":
                self.journal["steady_states"]["during"].append(state)
            else:
                self.journal["steady_states"][when] = state
        why: str | None = None
        with controls("hypothesis", self.doc, hypo, self.configuration, self.secrets) as control:
            control.with_state(state)
            for probe in probes:
                probe = self._resolve(probe)
                run = self.execute(probe)
                ok, why = self._tolerance(probe, run)
                run["tolerance_met"] = ok
                state["probes"].append(run)
                self._record(run, ok, why)
                if not ok:
                    state["steady_state_met"] = False
                    break
            else:
                state["steady_state_met"] = True
        return state, why

    def has_hypothesis(self) -> bool:
        return bool((self.doc.get(SSH) or {}).get("probes"))

    def before(self) -> None:
        """The hypothesis before the method; raises :class:`SteadyStateNotMet` (an ERROR)."""
        if not self.runtime.before:
            return
        self.interrupter.armed = True
        try:
            state, why = self.hypothesis("before")
        finally:
            self.interrupter.armed = False
        self._check_interrupted()
        if state is not None and not state["steady_state_met"]:
            self.journal["status"] = "failed"
            raise SteadyStateNotMet(f"steady state not met before the method (nothing injected): {why}")

    def after(self) -> None:
        if not self.runtime.after or self.interrupted is not None:
            return
        self.interrupter.armed = True
        try:
            state, why = self.hypothesis("after")
        finally:
            self.interrupter.armed = False
        if state is not None and not state["steady_state_met"]:
            self.journal["deviated"] = True
            self.failures.append(f"steady state deviated after the method: {why}")

    def _during(self, stop: threading.Event) -> None:
        """``during-method-only``/``continuously``: check the hypothesis every ``frequency`` seconds
        while the method runs. Each probe run is evidence on the timeline; with ``fail_fast``
        a deviation ratio at or over the threshold stops the method and fails the test."""
        iteration = failed = 0
        while not stop.is_set() and self.interrupted is None:
            iteration += 1
            try:
                state, why = self.hypothesis("during")
            except Exception as exc:
                state, why = {"steady_state_met": False}, f"{type(exc).__name__}: {exc}"
            if state is not None and not state["steady_state_met"]:
                failed += 1
                self.during_deviations = failed
                ratio = failed * 100.0 / iteration
                if self.runtime.fail_fast and ratio >= self.runtime.fail_fast_ratio:
                    self.journal["deviated"] = True
                    self.fail_fast_tripped = (
                        f"steady state deviated during the method (fail_fast, {failed} of {iteration} "
                        f"checks = {ratio:.0f}% >= {self.runtime.fail_fast_ratio:g}%): {why}"
                    )
                    with self._lock:
                        self.failures.append(self.fail_fast_tripped)
                    return
            stop.wait(self.runtime.frequency)

    # -- method and rollbacks ------------------------------------------------------

    def _ours(self, activity: dict[str, Any]) -> bool:
        provider = activity.get("provider") or {}
        return provider.get("type") == "python" and str(provider.get("module", "")).startswith(OUR_PROVIDERS)

    def _method_activity(self, activity: dict[str, Any], runs: list[dict[str, Any]]) -> bool:
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
            runs.append(run)
        ok = bool(run["status"] == "succeeded")
        if activity.get("type") == "probe":
            self._record(run, ok, _error_of(run))
        if fault is not None and not self.doc.get("rollbacks"):
            fault.revert()  # nothing will undo it: its effect is the action itself
        if not ok and self.interrupted is None:
            with self._lock:
                self.failures.append(f"method {activity.get('type')} {activity.get('name')!r} failed: {_error_of(run)}")
        return ok

    def method(self) -> None:
        """Run the method in order, inside the method-level controls; stop at the first failed
        activity, an interruption or a fail-fast deviation (background ones are awaited)."""
        from chaoslib.control import controls  # type: ignore[import-untyped,unused-ignore]
        from chaoslib.exceptions import InterruptExecution  # type: ignore[import-untyped,unused-ignore]

        self._check_interrupted()
        self.method_started = True
        stop = threading.Event()
        during: threading.Thread | None = None
        if self.runtime.during and self.has_hypothesis():
            during = threading.Thread(target=self._during, args=(stop,), name="resiliency-ctk-during", daemon=True)
            during.start()
        runs: list[dict[str, Any]] = self.journal["run"]
        background: list[threading.Thread] = []
        self.interrupter.armed = True
        try:
            with controls("method", self.doc, self.doc, self.configuration, self.secrets) as control:
                try:
                    for activity in self.doc.get("method", []):
                        if self.fail_fast_tripped or self.interrupted:
                            break
                        if activity.get("background"):
                            thread = threading.Thread(
                                target=self._method_activity,
                                args=(activity, runs),
                                name="resiliency-ctk-background",
                                daemon=True,
                            )
                            thread.start()
                            background.append(thread)
                            continue
                        if not self._method_activity(activity, runs):
                            break
                    for thread in background:
                        thread.join()  # each enforces its own timeout; Ctrl-C interrupts the join
                finally:
                    control.with_state(runs)
        except InterruptExecution as exc:
            self.interrupter.interrupt(f"control interrupted the method: {exc}")
        except BaseException:  # interrupted, Ctrl-C: nothing may go on acting while the rollbacks run
            self._abandon_all()
            raise
        finally:
            self.interrupter.armed = False
            stop.set()
            if during is not None:
                during.join()
        if self.interrupted is not None:
            self._abandon_all()
        self._check_interrupted()

    def _abandon_all(self) -> None:
        """Abandon every activity still running (background ones): process groups ended."""
        with self._lock:
            running = [t for t in self._threads if t.is_alive()]
        for thread in running:
            self._abandon(thread)

    def plays_rollbacks(self) -> bool:
        strategy = self.runtime.rollback_strategy
        if strategy == "never":
            return False
        if strategy == "deviated":
            return bool(self.journal["deviated"])
        if strategy == "always":
            return True  # as chaos run: even when the experiment stopped before the method
        return self.method_started  # ours: whatever happened once something may have acted

    def rollback(self) -> None:
        """The rollbacks the runtime strategy asks for, in order, inside the rollback-level controls;
        then the actions' faults end. A further Ctrl-C is held until they are done."""
        from chaoslib.control import controls  # type: ignore[import-untyped,unused-ignore]
        from chaoslib.exceptions import InterruptExecution  # type: ignore[import-untyped,unused-ignore]

        if self.rolled_back:
            return
        self.rolled_back = True
        self.interrupter.armed = False
        if not self.plays_rollbacks():
            if self.doc.get("rollbacks") and self.method_started:
                self.journal["rollbacks_skipped"] = f"runtime.rollbacks.strategy={self.runtime.rollback_strategy}"
        else:
            with contextlib.nullcontext() if self.interrupter.holding_sigint else _sigint_held():
                runs: list[dict[str, Any]] = self.journal["rollbacks"]
                try:
                    with controls("rollback", self.doc, self.doc, self.configuration, self.secrets) as control:
                        try:
                            for activity in self.doc.get("rollbacks", []):
                                run = self.execute(activity)
                                runs.append(run)
                                if run["status"] != "succeeded":
                                    name = run["activity"].get("name")
                                    self.failures.append(f"rollback {name!r} failed: {_error_of(run)}")
                        finally:
                            control.with_state(runs)
                except InterruptExecution as exc:
                    self.failures.append(f"a control interrupted the rollbacks: {exc}")
        for fault in reversed(self._faults):
            fault.revert()

    def finish(self, status: str) -> None:
        self.journal["status"] = status
        self.journal["end"] = _now_iso()
        self.journal["duration"] = time.time() - self._started
        if self.interrupted:
            self.journal["interrupted_by"] = self.interrupted
        if self.interrupter.swallowed_sigint:
            self.journal["ctrl_c_ignored_during_rollbacks"] = self.interrupter.swallowed_sigint

    # -- dry run -------------------------------------------------------------------

    def plan(self) -> list[str]:
        """One line per activity, in the order a run would execute them (``--resiliency-dry-run``)."""
        from chaoslib import substitute  # type: ignore[import-untyped,unused-ignore]

        def line(phase: str, activity: dict[str, Any]) -> str:
            activity = self._resolve(activity)
            provider = activity.get("provider") or {}
            kind = provider.get("type")
            if kind == "python":
                where = f"{provider.get('module')}.{provider.get('func')}"
            elif kind == "process":
                where = str(provider.get("path"))
            else:
                where = f"{provider.get('method', 'GET')} {provider.get('url')}"
            arguments = substitute(provider.get("arguments", {}), self.configuration, {})  # secrets stay ${...}
            shown_args = _middle(json.dumps(arguments, default=str), 200) if arguments else ""
            extra = " (background)" if activity.get("background") else ""
            return (
                f"{phase}: {activity.get('type')} {activity.get('name')!r}: {kind} {where} {shown_args}{extra}".rstrip()
            )

        probes = (self.doc.get(SSH) or {}).get("probes") or []
        lines = [f"runtime: {json.dumps(self.runtime.as_dict())}"]
        if self.runtime.before:
            lines += [line("hypothesis before", p) for p in probes]
        if self.runtime.during:
            lines += [line(f"hypothesis during (every {self.runtime.frequency:g}s)", p) for p in probes]
        lines += [line("method", a) for a in self.doc.get("method", [])]
        if self.runtime.after:
            lines += [line("hypothesis after", p) for p in probes]
        lines += [line(f"rollback ({self.runtime.rollback_strategy})", a) for a in self.doc.get("rollbacks", [])]
        return [_replace_strings(text, self._secret_values()) for text in lines]

    # -- report --------------------------------------------------------------------

    def _secret_values(self) -> list[str]:
        """Every resolved secret value, and configuration values that are secrets by name or origin."""
        from ..report.secrets import secret_name

        values = set(_leaves(self.secrets))
        if self.options is not None:
            values |= set(_leaves(self.options.secret_vars))
        values |= set(_leaves(self._inline_secrets()))
        declared = self.doc.get("configuration") or {}
        for key, value in self.configuration.items():
            origin = declared.get(key)
            env_key = origin.get("key") if isinstance(origin, dict) else None
            if secret_name(str(key)) or (isinstance(env_key, str) and secret_name(env_key)):
                values |= set(_leaves(value))
        return sorted((v for v in values if len(v) >= 4), key=len, reverse=True)

    def _inline_secrets(self) -> Any:
        section = self.spec.experiment.get("secrets") or {}
        return section

    def redacted(self, doc: dict[str, Any]) -> dict[str, Any]:
        """The journal without secrets: the ``secrets`` section's values, and every resolved secret
        (and secret configuration value) wherever it appears (outputs, tracebacks, arguments)."""
        from ..report.secrets import secret_name

        experiment = doc.get("experiment")
        if isinstance(experiment, dict):
            if experiment.get("secrets"):
                experiment["secrets"] = _redact_leaves(experiment["secrets"])
            configuration = experiment.get("configuration")
            if isinstance(configuration, dict):
                for key in list(configuration):
                    if secret_name(str(key)):
                        configuration[key] = _redact_leaves(configuration[key])
        result: dict[str, Any] = _replace_strings(doc, self._secret_values())
        return result

    def bounded_journal(self) -> dict[str, Any]:
        """The CTK journal for reports, secrets redacted: at most ``MAX_RUNS`` runs a section, long text cut."""
        with self._lock:
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
        during = doc["steady_states"].get("during") or []
        for state in during[:MAX_RUNS]:
            state["probes"] = runs(state.get("probes") or [])
        if len(during) > MAX_RUNS:
            doc["steady_states"]["during"] = [*during[:MAX_RUNS], {"cut": len(during) - MAX_RUNS}]
        return self.redacted(doc)
