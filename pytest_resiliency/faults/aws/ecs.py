"""ECS fault: stop tasks (the service scheduler is expected to replace them)."""

from __future__ import annotations

from typing import Any

from ...aws.session import AwsSession
from ...targets.aws import Selector
from ._base import AwsFault


class EcsStopTasks(AwsFault):
    """Stop the selected ECS tasks. Nothing to revert: restarting them is the service's job."""

    kind = "ecs-stop-tasks"
    resource_kind = "ecs:task"

    def __init__(self, targets: Selector, *, reason: str = "pytest-resiliency fault", **kw: Any) -> None:
        super().__init__(targets, **kw)
        self.reason = reason

    def _inject(self) -> None:
        for task in self.resolve():
            self.mutate("ecs", "stop_task", cluster=task.extra["cluster"], task=task.arn, reason=self.reason)

    def _revert(self) -> None:
        pass


def ecs_stop_tasks(
    tasks: Selector,
    *,
    reason: str = "pytest-resiliency fault",
    session: AwsSession | None = None,
    max_duration: float | str | None = None,
) -> EcsStopTasks:
    """Stop ECS tasks chosen by ``targets.aws.ecs_tasks(cluster=..., service=..., mode=...)``."""
    return EcsStopTasks(tasks, reason=reason, session=session, max_duration=max_duration)


__all__ = ["EcsStopTasks", "ecs_stop_tasks"]
