"""The Fault lifecycle: inject on enter, revert on exit, always — reported to a recorder.

A fault records ``t_inject`` immediately before it acts and its revert time after it stops
acting, and reports both to the :class:`Recorder` it was given (``fault.inject(recorder=...)``)
or, for a fault used as a plain context manager, to the recorder of the running test
(:mod:`pytest_resiliency.context`, bound by the plugin). Faults never import the experiment: data
flows one way, faults -> recorder -> timeline. Every fault has a maximum duration: a watchdog
reverts it when that passes, so a test that hangs never leaves a fault behind. Subclasses
implement ``_inject``/``_revert`` and, for reports, ``target`` and ``params``.

Beyond the watchdog, a fault *claims* the real identity of its target before acting
(:mod:`.claims`: a process is its pid and start time, however it was addressed), writes its
undo recipe (:meth:`Fault._undo_actions`) to the on-disk undo log (:mod:`.undo`) before acting,
and faults that cannot end by themselves start a detached expiry helper, so even a SIGKILLed
pytest leaves nothing behind for longer than ``max_duration`` and ``pytest
--resiliency-recover`` can undo the rest.
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
from typing import Any, ClassVar, Protocol, Self

from .. import validate
from ..budget import format_duration
from ..errors import ConfigError, FaultError
from ..timeline import FaultRecord
from . import claims, termination, undo

DEFAULT_MAX_DURATION = 600.0
# How long a fault waits for another process to release its target before giving up.
LOCK_TIMEOUT = float(os.environ.get("RESILIENCY_LOCK_TIMEOUT", "120"))


class Recorder(Protocol):
    """Where a fault reports what it did: the experiment of the test (or anything with these)."""

    @property
    def nodeid(self) -> str: ...

    def fault_injected(self, fault: Fault) -> None: ...

    def fault_reverted(self, fault: Fault, at: float, error: str | None) -> None: ...

    def fault_expired(self, fault: Fault, at: float) -> None: ...


def ambient_recorder() -> Recorder | None:
    """The running test's experiment (:mod:`pytest_resiliency.context`), for faults used as plain context managers."""
    from .. import context

    return context.experiment()


class Fault(abc.ABC):
    """Base class of every fault. Use it as a context manager, or ``inject()``/``revert()``."""

    kind: ClassVar[str] = "fault"
    # Faults that do not end by themselves (a paused process, a fill file) get a detached helper.
    needs_expiry_helper: ClassVar[bool] = False
    # Faults that act at once and leave nothing to undo (a kill): recovery says so, not "check by hand".
    instant: ClassVar[bool] = False

    def __init__(self, *, name: str | None = None, max_duration: float | str | None = None) -> None:
        self.name = name or self.kind
        self.max_duration = (
            DEFAULT_MAX_DURATION
            if max_duration is None
            else validate.duration(max_duration, f"faults.{self.kind}: max_duration", positive=True)
        )
        self.recorder: Recorder | None = None
        self.record: FaultRecord | None = None
        self._lock = threading.RLock()
        self._watchdog: threading.Timer | None = None
        self.expired = False
        self._entry: undo.Entry | None = None
        self._helper: subprocess.Popen[bytes] | None = None
        self._claim: claims.Claim | None = None

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
        """Builtin undo recipe for the undo log, run by the expiry helper or ``--resiliency-recover``."""
        return []

    @property
    def target(self) -> str | None:
        """What the fault acts on, for reports (``pid 4711``, ``127.0.0.1:8080``)."""
        return None

    def identities(self) -> list[str]:
        """The real identities of the target, known after ``_prepare`` (``process 4711@98765``).

        They key the refusal of a second fault of this kind and the cross-process lock, so one
        target addressed two ways is still one target. Empty: nothing to claim.
        """
        key = self.lock_key
        return [] if key is None else [key]

    @property
    def lock_key(self) -> str | None:
        """One identity string (the former API; subclasses that override it keep working)."""
        return None if self.target is None else f"target {self.target}"

    def params(self) -> dict[str, Any]:
        """The fault's parameters, builtins only (they travel to reports and across xdist)."""
        return {"max_duration": self.max_duration}

    def describe(self) -> str:
        """One line for people: what, on what, how long at most."""
        on = f" on {self.target}" if self.target else ""
        return f"{self.name}{on} (max {format_duration(self.max_duration)})"

    @property
    def experiment(self) -> Recorder | None:
        """Former name of :attr:`recorder` (the experiment the fault reports to)."""
        return self.recorder

    # -- lifecycle ---------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.record is not None and self.record.reverted_at is None

    def inject(self, *, recorder: Recorder | None = None) -> Self:
        """Inject now; ``t_inject`` is taken immediately before the fault acts.

        ``recorder`` receives the fault's record (default: the running test's experiment).
        """
        with termination.step(on_deferred=self.revert):  # a SIGTERM now waits for the inject to finish
            return self._inject_locked(recorder)

    def _inject_locked(self, recorder: Recorder | None) -> Self:
        with self._lock:
            if self.active:
                raise FaultError(f"{self.describe()} is already injected; revert it first")
            if recorder is not None:
                self.recorder = recorder
            elif self.recorder is None:
                self.recorder = ambient_recorder()
            self._prepare()
            nodeid = self.recorder.nodeid if self.recorder is not None else "no test"
            self._claim = claims.claim(
                self, self.identities(), f"pid {os.getpid()} ({nodeid}, {self.kind})", LOCK_TIMEOUT
            )
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
            if self.recorder is not None:
                self.recorder.fault_injected(self)
            self._watchdog = threading.Timer(self.max_duration, self._expire)
            self._watchdog.name = f"resiliency-watchdog-{self.name}"
            self._watchdog.daemon = True
            self._watchdog.start()
        return self

    # -- undo log and expiry helper -----------------------------------------------

    def _open_entry(self) -> None:
        nodeid = self.recorder.nodeid if self.recorder is not None else None
        self._entry = undo.Entry.create(
            self.kind, self.target, self.describe(), time.time() + self.max_duration, nodeid, instant=self.instant
        )
        self._entry.set_undo(self._undo_actions())
        if self.needs_expiry_helper:
            self._helper = undo.spawn_expiry(self._entry)

    def _release(self, clean: bool) -> None:
        """Drop the undo entry (only after a clean revert), stop the helper, free the target."""
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
        claim, self._claim = self._claim, None
        if claim is not None:
            claim.release()

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
                if self.recorder is not None:
                    self.recorder.fault_reverted(self, reverted_at, error)
                else:
                    self.record.reverted_at = reverted_at
                    self.record.error = error

    def _expire(self) -> None:
        """Watchdog: the maximum duration passed and the fault is still active."""
        with self._lock:
            if not self.active:
                return
            self.expired = True
            if self.recorder is not None:
                self.recorder.fault_expired(self, time.time())
            with contextlib.suppress(Exception):  # recorded on the fault; a watchdog has nobody to raise to
                self.revert()

    def _safe_revert(self) -> None:
        with contextlib.suppress(Exception):
            self._revert()

    def __enter__(self) -> Self:
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
            raise ConfigError(
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


__all__ = ["CustomFault", "Fault", "FaultError", "Recorder", "ambient_recorder", "custom"]
