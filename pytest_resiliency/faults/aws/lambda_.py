"""Lambda fault: throttle a function by setting its reserved concurrency to 0."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ...aws.session import AwsSession
from ...targets.aws import Selector
from ._base import AwsFault

_UNSET = -1


class LambdaThrottle(AwsFault):
    """Reserved concurrency 0 on each selected function; the previous setting (or none) is restored."""

    kind = "lambda-throttle"
    resource_kind = "lambda:function"

    def __init__(self, targets: Selector | str | Iterable[str], **kw: Any) -> None:
        super().__init__(targets, **kw)
        self.previous: dict[str, int] = {}

    def _inject(self) -> None:
        client = self.session.client("lambda")
        for function in self.resolve():
            current = client.get_function_concurrency(FunctionName=function.id).get("ReservedConcurrentExecutions")
            self.previous[function.id] = _UNSET if current is None else int(current)
            self.mutate("lambda", "put_function_concurrency", FunctionName=function.id, ReservedConcurrentExecutions=0)

    def _revert(self) -> None:
        previous, self.previous = self.previous, {}
        for function, value in previous.items():
            if value == _UNSET:
                self.mutate("lambda", "delete_function_concurrency", FunctionName=function)
            else:
                self.mutate(
                    "lambda", "put_function_concurrency", FunctionName=function, ReservedConcurrentExecutions=value
                )


def lambda_throttle(
    functions: Selector | str | Iterable[str],
    *,
    session: AwsSession | None = None,
    max_duration: float | str | None = None,
) -> LambdaThrottle:
    """Throttle Lambda functions (every invocation rejected) for the ``with`` body."""
    return LambdaThrottle(functions, session=session, max_duration=max_duration)


__all__ = ["LambdaThrottle", "lambda_throttle"]
