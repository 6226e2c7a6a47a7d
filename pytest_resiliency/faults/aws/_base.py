"""What every AWS fault shares: a session, a selector resolved at injection, polling with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ...aws.session import AwsSession, resolve_session
from ...budget import parse_duration
from ...targets.aws import Resource, Selector, as_selector, record_resolution
from ..base import Fault, FaultError

T = TypeVar("T")
DEFAULT_WAIT = 300.0


def poll_until(
    check: Callable[[], T | None], *, timeout: float, every: float, what: str, session: AwsSession | None = None
) -> T:
    """Call ``check`` until it returns something other than ``None``; ``FaultError`` at the deadline."""
    deadline = time.monotonic() + timeout
    period = every if session is None or session.mode == "real" else min(every, 0.05)
    for _ in range(1_000_000):
        result = check()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            break
        time.sleep(period)
    raise FaultError(f"{what}: not done within {timeout:g}s")


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
        self.wait_timeout = 0.0 if wait is None else parse_duration(wait, "wait")
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
