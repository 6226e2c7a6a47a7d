"""The Fault protocol: inject on enter, revert on exit, always.

A fault records ``t_inject`` immediately before it acts and its revert time after it
stops acting, into the current test's experiment when there is one. Every fault has a
maximum duration: a watchdog reverts it when that passes, so a test that hangs never
leaves a fault behind. Subclasses implement ``_inject``/``_revert`` and, for reports,
``target`` and ``params``.

Beyond the in-process watchdog, a fault *claims* its target before acting: a second fault
of the same kind on the same target in this process is refused, and an exclusive file lock
per target keeps other pytest processes (xdist workers) off it until the revert. It writes
an entry with its undo recipe (:meth:`Fault._undo_actions`) to the on-disk journal before
acting, and faults that cannot end by themselves start a detached expiry helper, so even a
SIGKILLed pytest leaves nothing behind for longer than ``max_duration`` and
``pytest --resiliency-recover`` can undo the rest (see :mod:`.journal`).
"""

from __future__ import annotations

import abc
import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

from ..budget import BudgetError, format_duration, parse_duration
from ..timeline import FaultRecord
from . import journal, termination

if TYPE_CHECKING:
    from ..experiment import Experiment

DEFAULT_MAX_DURATION = 600.0
# How long a fault waits for another process to release its target before giving up.
LOCK_TIMEOUT = float(os.environ.get("RESILIENCY_LOCK_TIMEOUT", "120"))

_claims_lock = threading.Lock()
_active_kinds: dict[tuple[str, str], Fault] = {}
_held_locks: dict[str, tuple[journal.TargetLock, int]] = {}


class FaultError(RuntimeError):
    """A fault could not be injected or reverted; the message names the fault and why."""


class Fault(abc.ABC):
    """Base class of every fault. Use it as a context manager, or ``inject()``/``revert()``."""

    kind: ClassVar[str] = "fault"
    # Faults that do not end by themselves (a paused process, a fill file) get a detached helper.
    needs_expiry_helper: ClassVar[bool] = False

    def __init__(self, *, name: str | None = None, max_duration: float | str | None = None) -> None:
        self.name = name or self.kind
        try:
            self.max_duration = (
                DEFAULT_MAX_DURATION if max_duration is None else parse_duration(max_duration, "max_duration")
            )
        except BudgetError as exc:
            raise FaultError(f"{self.name}: {exc}") from None
        if self.max_duration <= 0:
            raise FaultError(f"{self.name}: max_duration must be > 0")
        self.experiment: Experiment | None = None
        self.record: FaultRecord | None = None
        self._lock = threading.RLock()
        self._watchdog: threading.Timer | None = None
        self.expired = False
        self._entry: journal.Entry | None = None
        self._helper: subprocess.Popen[bytes] | None = None
        self._claimed: tuple[str, str] | None = None

    # -- what subclasses provide -------------------------------------------------

    @abc.abstractmethod
    def _inject(self) -> None:
        """Make the fault act. Raise :class:`FaultError` with a clear message on bad input."""

    @abc.abstractmethod
    def _revert(self) -> None:
        """Undo the fault. Must be safe to call after a partial ``_inject``."""

    def _prepare(self) -> None:  # noqa: B027 - optional hook, most faults need nothing here
        """Resolve and validate the target before anything acts (so ``t_inject`` stays exact)."""

    def _undo_actions(self) -> list[dict[str, Any]]:
        """Builtin undo recipe for the journal, run by the expiry helper or ``--resiliency-recover``."""
        return []

    @property
    def target(self) -> str | None:
        """What the fault acts on, for reports (``pid 4711``, ``127.0.0.1:8080``)."""
        return None

    @property
    def lock_key(self) -> str | None:
        """Identity of the target for refusal and the cross-process lock; ``None`` means no lock."""
        return self.target

    def params(self) -> dict[str, Any]:
        """The fault's parameters, builtins only (they travel to reports and across xdist)."""
        return {"max_duration": self.max_duration}

    def describe(self) -> str:
        """One line for people: what, on what, how long at most."""
        on = f" on {self.target}" if self.target else ""
        return f"{self.name}{on} (max {format_duration(self.max_duration)})"

    # -- lifecycle ---------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.record is not None and self.record.reverted_at is None

    def inject(self) -> Fault:
        """Inject now; ``t_inject`` is taken immediately before the fault acts."""
        with termination.step(on_deferred=self.revert):  # a SIGTERM now waits for the inject to finish
            return self._inject_locked()

    def _inject_locked(self) -> Fault:
        from ..experiment import current_experiment

        with self._lock:
            if self.active:
                raise FaultError(f"{self.describe()} is already injected; revert it first")
            if self.experiment is None:
                self.experiment = current_experiment()
            self._prepare()
            self._claim()
            try:
                termination.fault_started(self)
                self._open_entry()
                injected_at = time.time()
                try:
                    self._inject()
                except BaseException:
                    self._safe_revert()
                    raise
                if self._entry is not None:
                    self._entry.set_undo(self._undo_actions())
            except BaseException:
                self._release(clean=True)
                raise
            self.expired = False
            self.record = FaultRecord(
                kind=self.kind,
                name=self.name,
                description=self.describe(),
                params=self.params(),
                target=self.target,
                injected_at=injected_at,
            )
            if self.experiment is not None:
                self.experiment.fault_injected(self)
            self._watchdog = threading.Timer(self.max_duration, self._expire)
            self._watchdog.name = f"resiliency-watchdog-{self.name}"
            self._watchdog.daemon = True
            self._watchdog.start()
        return self

    # -- claim, journal, expiry helper -------------------------------------------

    def _claim(self) -> None:
        """Refuse a second fault of this kind on the target, then take the target's file lock."""
        key = self.lock_key
        if key is None:
            return
        with _claims_lock:
            existing = _active_kinds.get((self.kind, key))
            if existing is not None and existing is not self:
                raise FaultError(
                    f"{self.describe()}: {self.target} already has an active {self.kind} fault "
                    f"({existing.describe()}); revert it before injecting another"
                )
            _active_kinds[(self.kind, key)] = self
            self._claimed = (self.kind, key)
            held = _held_locks.get(key)
            if held is not None:
                _held_locks[key] = (held[0], held[1] + 1)
                return
        lock = journal.TargetLock(key)
        nodeid = self.experiment.nodeid if self.experiment is not None else "no test"
        try:
            lock.acquire(LOCK_TIMEOUT, f"pid {os.getpid()} ({nodeid}, {self.kind})")
        except TimeoutError as exc:
            with _claims_lock:
                _active_kinds.pop((self.kind, key), None)
                self._claimed = None
            raise FaultError(f"{self.describe()}: {exc}") from None
        with _claims_lock:
            held = _held_locks.get(key)
            _held_locks[key] = (lock, 1) if held is None else (held[0], held[1] + 1)
        if held is not None:  # another thread of this process took it meanwhile: keep one
            lock.release()

    def _open_entry(self) -> None:
        nodeid = self.experiment.nodeid if self.experiment is not None else None
        self._entry = journal.Entry.create(
            self.kind, self.target, self.describe(), time.time() + self.max_duration, nodeid
        )
        self._entry.set_undo(self._undo_actions())
        if self.needs_expiry_helper:
            self._helper = journal.spawn_expiry(self._entry)

    def _release(self, clean: bool) -> None:
        """Drop the journal entry (only after a clean revert), stop the helper, free the target."""
        try:
            self._release_claims(clean)
        finally:
            termination.fault_ended(self)  # the last one ends the process if SIGTERM is pending

    def _release_claims(self, clean: bool) -> None:
        entry, self._entry = self._entry, None
        if entry is not None and clean:
            entry.remove()
        helper, self._helper = self._helper, None
        if helper is not None:
            if helper.stdin is not None:
                helper.stdin.close()  # the helper wakes, sees its entry gone (or not) and acts
            # Reap it off the revert path: it exits within milliseconds once it sees its entry gone.
            threading.Thread(target=_reap, args=(helper,), name="resiliency-reap-helper", daemon=True).start()
        claimed, self._claimed = self._claimed, None
        if claimed is None:
            return
        with _claims_lock:
            _active_kinds.pop(claimed, None)
            held = _held_locks.get(claimed[1])
            if held is None:
                return
            if held[1] > 1:
                _held_locks[claimed[1]] = (held[0], held[1] - 1)
                return
            del _held_locks[claimed[1]]
        held[0].release()

    def revert(self) -> None:
        """Undo the fault; a no-op when it is not active, so calling it twice is safe."""
        with termination.step():  # a SIGTERM now waits for the revert to finish
            self._revert_locked()

    def _revert_locked(self) -> None:
        with self._lock:
            if not self.active:
                return
            assert self.record is not None
            if self._watchdog is not None:
                self._watchdog.cancel()
            error: str | None = None
            try:
                self._revert()
            except BaseException as exc:
                error = f"{type(exc).__name__}: {exc}"
                raise
            finally:
                reverted_at = time.time()
                self._release(clean=error is None)
                if self.experiment is not None:
                    self.experiment.fault_reverted(self, reverted_at, error)
                else:
                    self.record.reverted_at = reverted_at
                    self.record.error = error

    def _expire(self) -> None:
        """Watchdog: the maximum duration passed and the fault is still active."""
        with self._lock:
            if not self.active:
                return
            self.expired = True
            if self.experiment is not None:
                self.experiment.timeline.mark(time.time(), "fault-expired", self.name, max_duration=self.max_duration)
            with contextlib.suppress(Exception):  # recorded on the fault; a watchdog has nobody to raise to
                self.revert()

    def _safe_revert(self) -> None:
        with contextlib.suppress(Exception):
            self._revert()

    def __enter__(self) -> Fault:
        return self.inject()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.revert()

    def __repr__(self) -> str:
        state = "active" if self.active else "idle"
        return f"<{type(self).__name__} {self.describe()} {state}>"


def _reap(helper: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):  # not reverted cleanly: the helper keeps its deadline
        helper.wait(timeout=5)


class CustomFault(Fault):
    """A fault made of two callables: the way to fault anything the library does not cover."""

    kind = "custom"

    def __init__(
        self,
        inject: Callable[[], Any],
        revert: Callable[[], Any],
        *,
        name: str | None = None,
        target: str | None = None,
        max_duration: float | str | None = None,
        **params: Any,
    ) -> None:
        if not callable(inject) or not callable(revert):
            raise FaultError(
                f"faults.custom needs two callables (inject, revert); got {type(inject).__name__}, "
                f"{type(revert).__name__}"
            )
        super().__init__(name=name or getattr(inject, "__name__", "custom"), max_duration=max_duration)
        self._inject_fn = inject
        self._revert_fn = revert
        self._target = target
        self._params = params
        self._injected = False

    @property
    def target(self) -> str | None:
        return self._target

    def params(self) -> dict[str, Any]:
        return {**super().params(), **{k: v for k, v in self._params.items()}}

    def _inject(self) -> None:
        self._injected = True
        self._inject_fn()

    def _revert(self) -> None:
        if self._injected:
            self._injected = False
            self._revert_fn()


def custom(
    inject: Callable[[], Any],
    revert: Callable[[], Any],
    *,
    name: str | None = None,
    target: str | None = None,
    max_duration: float | str | None = None,
    **params: Any,
) -> CustomFault:
    """A fault from two callables: ``with faults.custom(break_it, fix_it, name="db down"): ...``."""
    return CustomFault(inject, revert, name=name, target=target, max_duration=max_duration, **params)
