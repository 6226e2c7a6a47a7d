"""EC2 instance faults: terminate, stop (started again on revert), reboot."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ...aws.session import AwsSession
from ...targets.aws import Selector
from ._base import AwsFault, poll_until


class _Ec2Fault(AwsFault):
    resource_kind = "ec2:instance"

    def _states(self, ids: list[str]) -> dict[str, str]:
        ec2 = self.session.client("ec2")
        out: dict[str, str] = {}
        for page in ec2.get_paginator("describe_instances").paginate(InstanceIds=ids):
            for reservation in page["Reservations"]:
                for i in reservation["Instances"]:
                    out[i["InstanceId"]] = i["State"]["Name"]
        return out

    def _wait_state(self, ids: list[str], state: str) -> None:
        if not self.wait_timeout or not ids or self.dry_run:
            return

        def reached() -> bool | None:
            states = self._states(ids)
            return True if all(states.get(i) == state for i in ids) else None

        poll_until(
            reached, timeout=self.wait_timeout, every=2.0, what=f"{self.name}: {state} {ids}", session=self.session
        )


class Ec2Terminate(_Ec2Fault):
    """Terminate the selected instances. Nothing to revert: replacing them is the system's job."""

    kind = "ec2-terminate"

    def _inject(self) -> None:
        if self.resolve():
            self.mutate("ec2", "terminate_instances", InstanceIds=self.ids)
            self._wait_state(self.ids, "terminated")

    def _revert(self) -> None:
        pass


class Ec2Stop(_Ec2Fault):
    """Stop the selected running instances; start them again on revert."""

    kind = "ec2-stop"

    def __init__(self, targets: Selector | str | Iterable[str], *, hibernate: bool = False, **kw: Any) -> None:
        super().__init__(targets, **kw)
        self.hibernate = hibernate
        self._stopped: list[str] = []

    def _inject(self) -> None:
        running = [r.id for r in self.resolve() if r.state in ("running", "pending", None)]
        if running:
            self._stopped = running
            self.mutate("ec2", "stop_instances", InstanceIds=running, Hibernate=self.hibernate)
            self._wait_state(running, "stopped")

    def _revert(self) -> None:
        stopped, self._stopped = self._stopped, []
        if stopped:
            if self.wait_timeout and not self.dry_run:
                self._wait_state(stopped, "stopped")  # start_instances refuses a stopping instance
            self.mutate("ec2", "start_instances", InstanceIds=stopped)
            self._wait_state(stopped, "running")

    def params(self) -> dict[str, Any]:
        return {**super().params(), "hibernate": self.hibernate}


class Ec2Reboot(_Ec2Fault):
    """Reboot the selected instances (nothing to revert)."""

    kind = "ec2-reboot"

    def _inject(self) -> None:
        if self.resolve():
            self.mutate("ec2", "reboot_instances", InstanceIds=self.ids)

    def _revert(self) -> None:
        pass


def ec2_terminate(
    targets: Selector | str | Iterable[str],
    *,
    session: AwsSession | None = None,
    max_duration: float | str | None = None,
    wait: float | str | None = "300s",
) -> Ec2Terminate:
    """Terminate EC2 instances (``targets``: a selector, an id/ARN or a list); waits until terminated."""
    return Ec2Terminate(targets, session=session, max_duration=max_duration, wait=wait)


def ec2_stop(
    targets: Selector | str | Iterable[str],
    *,
    session: AwsSession | None = None,
    hibernate: bool = False,
    max_duration: float | str | None = None,
    wait: float | str | None = "300s",
) -> Ec2Stop:
    """Stop EC2 instances for the ``with`` body; they are started again on exit."""
    return Ec2Stop(targets, session=session, hibernate=hibernate, max_duration=max_duration, wait=wait)


def ec2_reboot(
    targets: Selector | str | Iterable[str],
    *,
    session: AwsSession | None = None,
    max_duration: float | str | None = None,
) -> Ec2Reboot:
    """Reboot EC2 instances."""
    return Ec2Reboot(targets, session=session, max_duration=max_duration)


__all__ = ["Ec2Reboot", "Ec2Stop", "Ec2Terminate", "ec2_reboot", "ec2_stop", "ec2_terminate"]
