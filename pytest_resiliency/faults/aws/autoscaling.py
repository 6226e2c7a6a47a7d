"""Auto Scaling faults: terminate instances in a group, suspend its processes."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from typing import Any

from ...aws.session import AwsSession
from ...targets.aws import Selector, parse_mode
from ..base import FaultError
from ._base import AwsFault

PROCESSES = (
    "Launch",
    "Terminate",
    "AddToLoadBalancer",
    "AlarmNotification",
    "AZRebalance",
    "HealthCheck",
    "InstanceRefresh",
    "ReplaceUnhealthy",
    "ScheduledActions",
)


class AsgTerminateInstances(AwsFault):
    """Terminate ``instances`` (ALL/COUNT(n)/PERCENT(n)) of each selected group; the group replaces them."""

    kind = "asg-terminate-instances"
    resource_kind = "autoscaling:group"

    def __init__(
        self,
        targets: Selector | str | Iterable[str],
        *,
        instances: str = "COUNT(1)",
        decrement_desired: bool = False,
        seed: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(targets, **kw)
        try:
            self._how = parse_mode(instances)
        except ValueError as exc:
            raise FaultError(f"{self.kind}: instances={exc}") from None
        self.instances = instances
        self.decrement_desired = decrement_desired
        self.seed = seed
        self.terminated: list[str] = []

    def _inject(self) -> None:
        rng = random.Random(self.seed)
        for group in self.resolve():
            members = sorted(group.extra.get("instances", []))
            how, n = self._how
            count = len(members) if how == "ALL" else int(n) if how == "COUNT" else math.ceil(len(members) * n / 100)
            for instance in rng.sample(members, min(count, len(members))):
                self.mutate(
                    "autoscaling",
                    "terminate_instance_in_auto_scaling_group",
                    InstanceId=instance,
                    ShouldDecrementDesiredCapacity=self.decrement_desired,
                )
                self.terminated.append(instance)
        if not self.terminated and self.resources and self.selector.empty != "skip":
            raise FaultError(f"{self.kind}: the selected groups {self.ids} have no instances to terminate")

    def _revert(self) -> None:
        pass  # replacing instances is what the group is for; the experiment measures how fast

    def params(self) -> dict[str, Any]:
        return {**super().params(), "instances": self.instances, "terminated": list(self.terminated)}


class AsgSuspendProcesses(AwsFault):
    """Suspend scaling processes of the selected groups; resume on revert those this fault suspended."""

    kind = "asg-suspend-processes"
    resource_kind = "autoscaling:group"

    def __init__(
        self, targets: Selector | str | Iterable[str], *, processes: Iterable[str] | None = None, **kw: Any
    ) -> None:
        super().__init__(targets, **kw)
        self.processes = list(processes) if processes is not None else list(PROCESSES)
        unknown = [p for p in self.processes if p not in PROCESSES]
        if unknown or not self.processes:
            raise FaultError(f"{self.kind}: unknown processes {unknown or '[]'}; accepted: {', '.join(PROCESSES)}")
        self._suspended: dict[str, list[str]] = {}

    def _inject(self) -> None:
        client = self.session.client("autoscaling")
        for group in self.resolve():
            described = client.describe_auto_scaling_groups(AutoScalingGroupNames=[group.id])["AutoScalingGroups"]
            already = {p["ProcessName"] for g in described for p in g.get("SuspendedProcesses", [])}
            todo = [p for p in self.processes if p not in already]
            if todo:
                self._suspended[group.id] = todo
                self.mutate("autoscaling", "suspend_processes", AutoScalingGroupName=group.id, ScalingProcesses=todo)

    def _revert(self) -> None:
        suspended, self._suspended = self._suspended, {}
        for group, processes in suspended.items():
            self.mutate("autoscaling", "resume_processes", AutoScalingGroupName=group, ScalingProcesses=processes)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "processes": list(self.processes)}


def asg_terminate_instances(
    groups: Selector | str | Iterable[str],
    *,
    instances: str = "COUNT(1)",
    decrement_desired: bool = False,
    seed: int | None = None,
    session: AwsSession | None = None,
    max_duration: float | str | None = None,
) -> AsgTerminateInstances:
    """Terminate instances of Auto Scaling groups (``instances``: ALL, COUNT(n), PERCENT(n))."""
    return AsgTerminateInstances(
        groups,
        instances=instances,
        decrement_desired=decrement_desired,
        seed=seed,
        session=session,
        max_duration=max_duration,
    )


def asg_suspend_processes(
    groups: Selector | str | Iterable[str],
    *,
    processes: Iterable[str] | None = None,
    session: AwsSession | None = None,
    max_duration: float | str | None = None,
) -> AsgSuspendProcesses:
    """Suspend Auto Scaling processes (all by default) for the ``with`` body."""
    return AsgSuspendProcesses(groups, processes=processes, session=session, max_duration=max_duration)


__all__ = ["AsgSuspendProcesses", "AsgTerminateInstances", "asg_suspend_processes", "asg_terminate_instances"]
