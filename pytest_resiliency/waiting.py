"""Bounded waits, with tenacity: poll a condition until it holds or the time is up.

For what has no event to await (a log file, a process group, another server's state); where
an event exists (a supervisor's message, a thread's end) the code awaits that instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_result, stop_after_delay, wait_fixed

T = TypeVar("T")


def poll(
    check: Callable[[], T | None],
    timeout: float,
    every: float,
    give_up: Callable[[], bool] | None = None,
) -> T | None:
    """Call ``check`` every ``every`` seconds until it returns something other than ``None``/``False``.

    Returns that value, or the last ``None``/``False`` once ``timeout`` has passed or
    ``give_up()`` is true (then waiting longer cannot help). An exception from ``check``
    propagates: a condition that cannot be evaluated is the caller's error, not a "no".
    """

    def stop(state: RetryCallState) -> bool:
        return bool(stop_after_delay(timeout)(state) or (give_up is not None and give_up()))

    def last_result(state: RetryCallState) -> T | None:
        return state.outcome.result() if state.outcome is not None else None

    retrying = Retrying(
        stop=stop,
        wait=wait_fixed(every),
        retry=retry_if_result(lambda value: value is None or value is False),
        retry_error_callback=last_result,
        reraise=True,
    )
    return retrying(check)


def until(predicate: Callable[[], bool], timeout: float, every: float) -> bool:
    """Whether ``predicate()`` became true within ``timeout`` (polled every ``every`` seconds)."""
    return bool(poll(predicate, timeout, every))


__all__ = ["poll", "until"]
