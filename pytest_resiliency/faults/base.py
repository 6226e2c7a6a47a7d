"""The Fault protocol: inject on enter, revert on exit, always.

A fault records ``t_inject`` immediately before it acts and its revert time after it
stops acting, into the current test's experiment when there is one. Every fault has a
maximum duration: a watchdog reverts it when that passes, so a test that hangs never
leaves a fault behind. Subclasses implement ``_inject``/``_revert`` and, for reports,
``target`` and ``params``.
"""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

from ..budget import format_duration, parse_duration
from ..timeline import FaultRecord

if TYPE_CHECKING:
    from ..experiment import Experiment

DEFAULT_MAX_DURATION = 600.0


class FaultError(RuntimeError):
    """A fault could not be injected or reverted; the message names the fault and why."""


class Fault(abc.ABC):
    """Base class of every fault. Use it as a context manager, or ``inject()``/``revert()``."""

    kind: ClassVar[str] = "fault"

    def __init__(self, *, name: str | None = None, max_duration: float | str | None = None) -> None:
        self.name = name or self.kind
        self.max_duration = (
            DEFAULT_MAX_DURATION if max_duration is None else parse_duration(max_duration, "max_duration")
        )
        if self.max_duration <= 0:
            raise FaultError(f"{self.name}: max_duration must be > 0")
        self.experiment: Experiment | None = None
        self.record: FaultRecord | None = None
        self._lock = threading.RLock()
        self._watchdog: threading.Timer | None = None
        self.expired = False

    # -- what subclasses provide -------------------------------------------------

    @abc.abstractmethod
    def _inject(self) -> None:
        """Make the fault act. Raise :class:`FaultError` with a clear message on bad input."""

    @abc.abstractmethod
    def _revert(self) -> None:
        """Undo the fault. Must be safe to call after a partial ``_inject``."""

    @property
    def target(self) -> str | None:
        """What the fault acts on, for reports (``pid 4711``, ``127.0.0.1:8080``)."""
        return None

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
        from ..experiment import current_experiment

        with self._lock:
            if self.active:
                raise FaultError(f"{self.describe()} is already injected; revert it first")
            if self.experiment is None:
                self.experiment = current_experiment()
            injected_at = time.time()
            try:
                self._inject()
            except BaseException:
                self._safe_revert()
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

    def revert(self) -> None:
        """Undo the fault; a no-op when it is not active, so calling it twice is safe."""
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
            try:
                self.revert()
            except Exception:  # recorded on the fault; a watchdog thread has nobody to raise to
                pass

    def _safe_revert(self) -> None:
        try:
            self._revert()
        except Exception:
            pass

    def __enter__(self) -> Fault:
        return self.inject()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.revert()

    def __repr__(self) -> str:
        state = "active" if self.active else "idle"
        return f"<{type(self).__name__} {self.describe()} {state}>"


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
