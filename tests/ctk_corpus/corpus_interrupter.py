"""A control that interrupts the experiment before its first activity, like chaoslib's own
test fixture ``fixtures.controls.interrupter`` (written for this corpus)."""

from __future__ import annotations

from typing import Any


def before_activity_control(context: dict[str, Any], **kwargs: Any) -> None:
    from chaoslib.exceptions import InterruptExecution

    raise InterruptExecution("let's blow this up")
