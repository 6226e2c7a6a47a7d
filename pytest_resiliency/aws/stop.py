"""Stop conditions from CloudWatch alarms, for ``experiment.stop_when``.

``experiment.stop_when(stop.alarms("HighErrorRate"), every="5s")``: while a fault is
active the alarms are polled; when one is in ALARM the experiment aborts (faults are
reverted, the test is an ERROR), exactly as an FIS stop condition stops an experiment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError
from .session import AwsSession, resolve_session

if TYPE_CHECKING:
    from ..experiment import Experiment, StopCondition

__all__ = ["AlarmStopCondition", "alarms", "stop_on_alarms"]


class AlarmStopCondition:
    """True when any of the named alarms is in ALARM; ``tripped_by`` says which."""

    def __init__(self, names: tuple[str, ...], session: AwsSession | None = None) -> None:
        if not names or any(not isinstance(n, str) or not n for n in names):
            raise ConfigError(
                f"an alarm stop condition needs one or more alarm names (non-empty strings), got {names!r}"
            )
        self.names = names
        self.session = session
        self.tripped_by: str | None = None
        self.__name__ = f"alarm {', '.join(names)}"

    def __call__(self) -> bool:
        aws = resolve_session(self.session, "stop.alarms")
        found = aws.client("cloudwatch").describe_alarms(AlarmNames=list(self.names))
        alarms = found.get("MetricAlarms", []) + found.get("CompositeAlarms", [])
        missing = set(self.names) - {a["AlarmName"] for a in alarms}
        if missing:
            raise LookupError(f"alarm {', '.join(sorted(missing))} does not exist")
        for a in alarms:
            if a["StateValue"] == "ALARM":
                self.tripped_by = a["AlarmName"]
                return True
        return False


def alarms(*names: str, session: AwsSession | None = None) -> AlarmStopCondition:
    """A condition that trips when any alarm in ``names`` is in ALARM (a missing alarm trips it too)."""
    return AlarmStopCondition(names, session)


def stop_on_alarms(
    experiment: Experiment, *names: str, every: float | str = "5s", session: AwsSession | None = None
) -> StopCondition:
    """Shorthand for ``experiment.stop_when(alarms(*names), every=every)``."""
    condition = alarms(*names, session=session)
    return experiment.stop_when(condition, every=every, name=condition.__name__)
