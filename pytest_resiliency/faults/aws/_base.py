"""What every AWS fault shares: a session, a selector resolved at injection, polling with a deadline."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import tenacity

from ... import validate
from ...aws.session import AwsSession, resolve_session
from ...targets.aws import Resource, Selector, as_selector, record_resolution
from ..base import Fault, FaultError

T = TypeVar("T")
DEFAULT_WAIT = 300.0


def poll_period(session: AwsSession | None, every: float) -> float:
    """``every`` against real AWS; at most 50 ms against moto, whose state changes are instant."""
    return every if session is None or session.mode == "real" else min(every, 0.05)


def poll_until(
    check: Callable[[], T | None], *, timeout: float, every: float, what: str, session: AwsSession | None = None
) -> T:
    """Call ``check`` until it returns something other than ``None``; ``FaultError`` at the deadline."""
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_result(lambda result: result is None),
        stop=tenacity.stop_after_delay(timeout),
        wait=tenacity.wait_fixed(poll_period(session, every)),
    )
    try:
        result = retrying(check)
    except tenacity.RetryError:
        raise FaultError(f"{what}: not done within {timeout:g}s") from None
    assert result is not None  # retried until it was not None
    return result


class AwsFault(Fault):
    """A fault on resources chosen by a :class:`~pytest_resiliency.targets.aws.Selector`."""

    resource_kind = ""

    def __init__(
        self,
        targets: Selector | str | Iterable[str],
        *,
        session: AwsSession | None = None,
        name: str | None = None,
        max_duration: float | str | None = None,
        wait: float | str | None = DEFAULT_WAIT,
    ) -> None:
        super().__init__(name=name, max_duration=max_duration)
        try:
            self.selector = as_selector(targets, self.resource_kind)
        except ValueError as exc:
            raise FaultError(f"{self.kind}: {exc}") from None
        self._session = session
        self.wait_timeout = 0.0 if wait is None else validate.duration(wait, f"faults.{self.kind}: wait")
        self.resources: list[Resource] = []
        self.skipped = False

    @property
    def session(self) -> AwsSession:
        try:
            found = resolve_session(self._session, self.kind)
        except Exception as exc:
            raise FaultError(str(exc)) from None
        self._session = found
        return found

    @property
    def dry_run(self) -> bool:
        return self.session.dry_run

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.resources]

    def resolve(self) -> list[Resource]:
        """Resolve the selector now (read-only) and record the targets on the timeline."""
        self.session.verify()  # the allow-list refuses real AWS before the first call, even a read
        try:
            self.resources = self.selector.resolve(self.session)
        except ValueError as exc:
            raise FaultError(f"{self.kind}: {exc}") from None
        self.skipped = not self.resources
        record_resolution(self.name, self.selector, self.resources)
        return self.resources

    def mutate(self, service: str, operation: str, **params: Any) -> dict[str, Any] | None:
        return self.session.mutate(service, operation, **params)

    @property
    def target(self) -> str | None:
        if not self.resources:
            return f"{self.selector.kind} (none selected)" if self.skipped else None
        ids = self.ids
        shown = ", ".join(ids[:5]) + (f" +{len(ids) - 5} more" if len(ids) > 5 else "")
        return f"{self.selector.kind} {shown}"

    def params(self) -> dict[str, Any]:
        return {
            **super().params(),
            "selector": self.selector.as_dict(),
            "targets": self.ids,
            "dry_run": bool(self._session and self._session.dry_run),
        }
