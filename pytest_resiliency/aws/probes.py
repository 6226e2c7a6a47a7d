"""AWS probes: CloudWatch alarm, Auto Scaling healthy count, target group health, RDS writer, SSM command.

Each returns a :class:`~pytest_resiliency.probes.Probe` for ``experiment.monitor(...)``:
it passes when the resource is healthy and raises ``ProbeFailed`` saying what it saw.
The alarm probe also records the moment the alarm went to ALARM as an alert, which
the ``alert_within`` budget is held against.
"""

from __future__ import annotations

import threading
from typing import Any

from .. import context as _context
from ..errors import ConfigError
from ..probes.base import Probe, ProbeFailed
from ..validate import count, shown
from .session import AwsSession, resolve_session

__all__ = ["alarm", "asg_healthy", "rds_writer", "ssm_command", "target_group_healthy"]


def alarm(
    name: str,
    *,
    session: AwsSession | None = None,
    healthy: tuple[str, ...] = ("OK", "INSUFFICIENT_DATA"),
    record_alert: bool = True,
) -> Probe:
    """Passes while the CloudWatch alarm ``name`` is not in ALARM; the first ALARM is recorded as an alert."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"probes.alarm needs the alarm's name (a non-empty string), got {shown(name)}")
    seen = threading.Event()

    def check() -> None:
        aws = resolve_session(session, "probes.alarm")
        found = aws.client("cloudwatch").describe_alarms(AlarmNames=[name])
        alarms = found.get("MetricAlarms", []) + found.get("CompositeAlarms", [])
        if not alarms:
            raise ProbeFailed(f"alarm {name} does not exist")
        state = alarms[0]["StateValue"]
        if state in healthy:
            return
        if state == "ALARM" and record_alert and not seen.is_set():
            seen.set()
            updated = alarms[0].get("StateUpdatedTimestamp")
            experiment = _context.experiment()
            if experiment is not None:
                experiment.record_alert(name, updated.timestamp() if updated is not None else None)
        raise ProbeFailed(f"alarm {name} is {state}")

    return Probe(f"alarm {name}", check)


def asg_healthy(group: str, *, minimum: int | None = None, session: AwsSession | None = None) -> Probe:
    """Passes when the group has ``minimum`` (default: its desired capacity) healthy InService instances."""
    if minimum is not None:
        count(minimum, "probes.asg_healthy: minimum", 0)

    def check() -> None:
        aws = resolve_session(session, "probes.asg_healthy")
        groups = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])
        if not groups["AutoScalingGroups"]:
            raise ProbeFailed(f"Auto Scaling group {group} does not exist")
        g = groups["AutoScalingGroups"][0]
        healthy = [
            i
            for i in g.get("Instances", [])
            if i.get("HealthStatus") == "Healthy" and i.get("LifecycleState") == "InService"
        ]
        want = g["DesiredCapacity"] if minimum is None else minimum
        if len(healthy) < want:
            raise ProbeFailed(f"{group}: {len(healthy)} healthy InService instances < {want}")

    return Probe(f"asg {group} healthy", check)


def target_group_healthy(target_group_arn: str, *, minimum: int = 1, session: AwsSession | None = None) -> Probe:
    """Passes when at least ``minimum`` targets of the ELBv2 target group are healthy."""

    def check() -> None:
        aws = resolve_session(session, "probes.target_group_healthy")
        health = aws.client("elbv2").describe_target_health(TargetGroupArn=target_group_arn)
        states = [d["TargetHealth"]["State"] for d in health.get("TargetHealthDescriptions", [])]
        if states.count("healthy") < minimum:
            raise ProbeFailed(f"{states.count('healthy')} healthy targets < {minimum} ({', '.join(states) or 'none'})")

    return Probe(
        f"target group {target_group_arn.rsplit('/', 2)[-2] if target_group_arn.count('/') >= 2 else target_group_arn}",
        check,
    )


def rds_writer(cluster: str, *, expected: str | None = None, session: AwsSession | None = None) -> Probe:
    """Passes when the Aurora cluster is available with a writer (``expected`` instance, if given)."""

    def check() -> None:
        aws = resolve_session(session, "probes.rds_writer")
        found = aws.client("rds").describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"]
        if not found:
            raise ProbeFailed(f"cluster {cluster} does not exist")
        c = found[0]
        writers = [m["DBInstanceIdentifier"] for m in c.get("DBClusterMembers", []) if m.get("IsClusterWriter")]
        if c.get("Status") != "available":
            raise ProbeFailed(f"cluster {cluster} is {c.get('Status')}")
        if not writers:
            raise ProbeFailed(f"cluster {cluster} has no writer")
        if expected is not None and writers[0] != expected:
            raise ProbeFailed(f"cluster {cluster} writer is {writers[0]}, expected {expected}")

    return Probe(f"rds {cluster} writer", check)


def ssm_command(command: Any, *, session: AwsSession | None = None) -> Probe:
    """Passes while no invocation of the SSM command (an id, or an ``ssm_document`` fault) has failed."""

    def check() -> None:
        aws = resolve_session(session, "probes.ssm_command")
        command_id = getattr(command, "command_id", command)
        if not command_id:
            raise ProbeFailed("the SSM command has not been sent")
        listed = aws.client("ssm").list_commands(CommandId=command_id)["Commands"]
        if not listed:
            raise ProbeFailed(f"SSM command {command_id} does not exist")
        status = listed[0]["Status"]
        if status in ("Failed", "TimedOut", "Cancelled"):
            raise ProbeFailed(f"SSM command {command_id} is {status}")

    return Probe(f"ssm command {getattr(command, 'command_id', command)}", check)
