"""AWS target selectors, after AWS FIS: which resources a fault acts on.

A :class:`Selector` names a resource type and narrows it by ids/ARNs, tags, describe
filters and availability zone, then picks ``ALL``, ``COUNT(n)`` or ``PERCENT(n)`` of
what matched (at random, like FIS). It is resolved when the fault is injected, with
read-only calls, so ``--resiliency-dry-run`` shows the real targets. An empty
selection is an error unless ``empty="skip"``: a fault that silently hits nothing
proves nothing.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from ..errors import TargetError as _TargetError

if TYPE_CHECKING:
    from ..aws.session import AwsSession

MODE_HELP = "'ALL', 'COUNT(n)' with n >= 1 or 'PERCENT(n)' with 0 < n <= 100"
_MODE_RE = re.compile(r"^\s*(ALL|COUNT\((\d+)\)|PERCENT\((\d+(?:\.\d+)?)\))\s*$")
_GONE_EC2_STATES = ("pending", "running", "stopping", "stopped")


class TargetError(_TargetError, ValueError):
    """A selector that is malformed or matched nothing; the message says what was asked.

    A :class:`pytest_resiliency.errors.TargetError`; still a ``ValueError`` as before.
    """


@dataclass(frozen=True)
class Resource:
    """One resolved target."""

    kind: str
    id: str
    arn: str | None = None
    az: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    state: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "arn": self.arn, "az": self.az, "state": self.state}


def parse_mode(mode: str) -> tuple[str, float]:
    """``"COUNT(2)"`` -> ``("COUNT", 2)``; a clear error for anything else."""
    match = _MODE_RE.match(mode) if isinstance(mode, str) else None
    if not match:
        raise TargetError(f"selection mode {mode!r} is not {MODE_HELP}")
    if match.group(2) is not None:
        count = int(match.group(2))
        if count < 1:
            raise TargetError(f"selection mode {mode!r}: COUNT needs n >= 1")
        return "COUNT", count
    if match.group(3) is not None:
        percent = float(match.group(3))
        if not 0 < percent <= 100:
            raise TargetError(f"selection mode {mode!r}: PERCENT needs 0 < n <= 100")
        return "PERCENT", percent
    return "ALL", 0


def _tags(items: Iterable[Mapping[str, Any]] | None, key: str = "Key", value: str = "Value") -> dict[str, str]:
    return {str(t[key]): str(t.get(value, "")) for t in items or ()}


class Selector:
    """Resources of one ``kind`` narrowed by ids/ARNs, tags, filters and AZ, then ALL/COUNT/PERCENT."""

    def __init__(
        self,
        kind: str,
        *,
        ids: Iterable[str] | str | None = None,
        tags: Mapping[str, str] | None = None,
        filters: Mapping[str, Iterable[str] | str] | None = None,
        az: str | None = None,
        mode: str = "ALL",
        empty: str = "error",
        seed: int | None = None,
        cluster: str | None = None,
        service: str | None = None,
    ) -> None:
        if kind not in RESOLVERS:
            raise TargetError(f"target kind {kind!r} is not one of {', '.join(sorted(RESOLVERS))}")
        if empty not in ("error", "skip"):
            raise TargetError(f"empty={empty!r} must be 'error' (default) or 'skip'")
        self.kind = kind
        self.ids = [ids] if isinstance(ids, str) else list(ids or [])
        if any(not isinstance(i, str) or not i for i in self.ids):
            raise TargetError(f"{kind} ids must be non-empty strings (ids or ARNs), got {self.ids!r}")
        self.tags = dict(tags or {})
        self.filters = {k: [v] if isinstance(v, str) else list(v) for k, v in (filters or {}).items()}
        if self.filters and kind not in ("ec2:instance", "ec2:subnet"):
            raise TargetError(
                f"describe filters are supported for ec2:instance and ec2:subnet; for {kind} use ids, tags or az"
            )
        self.az = az
        self.mode = mode
        self._mode = parse_mode(mode)
        self.empty = empty
        self.seed = seed
        self.cluster = cluster
        self.service = service
        if kind == "ecs:task" and not cluster:
            raise TargetError("ecs:task selectors need cluster= (name or ARN)")
        if not (self.ids or self.tags or self.filters or az or kind == "ecs:task"):
            raise TargetError(
                f"a {kind} selector needs at least one of ids, tags, filters or az: "
                "an unqualified selector would target every resource in the account"
            )

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "mode": self.mode}
        for name in ("ids", "tags", "filters", "az", "cluster", "service"):
            value = getattr(self, name)
            if value:
                out[name] = value
        if self.empty != "error":
            out["empty"] = self.empty
        return out

    def __repr__(self) -> str:
        return f"Selector({', '.join(f'{k}={v!r}' for k, v in self.as_dict().items())})"

    def matches(self, resource: Resource) -> bool:
        if self.ids and resource.id not in self.ids and resource.arn not in self.ids:
            return False
        if self.az and resource.az != self.az:
            return False
        return all(resource.tags.get(k) == v for k, v in self.tags.items())

    def resolve(self, session: AwsSession) -> list[Resource]:
        """The selected resources (read-only calls); ``[]`` only with ``empty="skip"``."""
        candidates = [r for r in RESOLVERS[self.kind](session, self) if self.matches(r)]
        if self.ids:
            found = {r.id for r in candidates} | {r.arn for r in candidates}
            missing = [i for i in self.ids if i not in found]
            if missing and not (self.tags or self.az or self.filters):
                raise TargetError(f"{self.kind} not found: {', '.join(missing)} (selector {self!r})")
        candidates.sort(key=lambda r: r.id)
        selected = self._pick(candidates)
        if not selected and self.empty == "error":
            raise TargetError(f"{self!r} matched no {self.kind}; pass empty='skip' to skip the fault instead")
        return selected

    def _pick(self, candidates: list[Resource]) -> list[Resource]:
        how, n = self._mode
        if how == "ALL":
            return candidates
        count = int(n) if how == "COUNT" else math.ceil(len(candidates) * n / 100)
        return random.Random(self.seed).sample(candidates, min(count, len(candidates)))


def as_selector(value: Selector | str | Iterable[str], kind: str) -> Selector:
    """A selector from a selector, an id/ARN or a list of them (the faults' ``targets`` argument)."""
    if isinstance(value, Selector):
        if value.kind != kind:
            raise TargetError(f"this fault acts on {kind}, but the selector selects {value.kind}")
        return value
    if isinstance(value, str) or (isinstance(value, Iterable) and not isinstance(value, Mapping)):
        return Selector(kind, ids=value)
    raise TargetError(f"targets must be a Selector, an id/ARN or a list of them, got {type(value).__name__}")


def record_resolution(name: str, selector: Selector, resources: list[Resource]) -> None:
    """Tell the running test's experiment (:mod:`pytest_resiliency.context`) which targets were resolved."""
    from ..context import experiment as running_experiment

    experiment = running_experiment()
    if experiment is not None:
        experiment.record_event(
            "targets-resolved", name, selector=selector.as_dict(), targets=[r.id for r in resources]
        )


# -- resolvers: read-only listing of each kind -------------------------------------------------------


def _pages(client: Any, operation: str, key: str, **params: Any) -> list[Any]:
    out: list[Any] = []
    for page in client.get_paginator(operation).paginate(**params):
        out.extend(page.get(key, []))
    return out


def _ec2_instances(session: AwsSession, sel: Selector) -> list[Resource]:
    filters = [{"Name": k, "Values": v} for k, v in sel.filters.items()]
    if "instance-state-name" not in sel.filters:
        filters.append({"Name": "instance-state-name", "Values": list(_GONE_EC2_STATES)})
    filters += [{"Name": f"tag:{k}", "Values": [v]} for k, v in sel.tags.items()]
    # the AZ is matched on Placement by Selector.matches (moto ignores an availability-zone filter)
    ids = [i for i in sel.ids if i.startswith("i-")]
    ids += [i.rsplit("/", 1)[-1] for i in sel.ids if i.startswith("arn:")]
    params: dict[str, Any] = {"Filters": filters}
    if ids:
        params["InstanceIds"] = ids
    out = []
    try:
        reservations = _pages(session.client("ec2"), "describe_instances", "Reservations", **params)
    except Exception as exc:  # botocore's ClientError, which this module does not import
        if "InvalidInstanceID" not in str(exc):
            raise
        raise TargetError(f"ec2:instance not found: {exc} (selector {sel!r})") from None
    for reservation in reservations:
        for i in reservation["Instances"]:
            arn = f"arn:aws:ec2:{session.region}:{reservation.get('OwnerId', '')}:instance/{i['InstanceId']}"
            out.append(
                Resource(
                    "ec2:instance",
                    i["InstanceId"],
                    arn,
                    i.get("Placement", {}).get("AvailabilityZone"),
                    _tags(i.get("Tags")),
                    i.get("State", {}).get("Name"),
                    {"subnet": i.get("SubnetId")},
                )
            )
    return out


def _subnets(session: AwsSession, sel: Selector) -> list[Resource]:
    filters = [{"Name": k, "Values": v} for k, v in sel.filters.items()]
    if sel.az:
        filters.append({"Name": "availability-zone", "Values": [sel.az]})
    subnets = _pages(session.client("ec2"), "describe_subnets", "Subnets", Filters=filters)
    return [
        Resource(
            "ec2:subnet",
            s["SubnetId"],
            s.get("SubnetArn"),
            s.get("AvailabilityZone"),
            _tags(s.get("Tags")),
            s.get("State"),
            {"vpc": s.get("VpcId")},
        )
        for s in subnets
    ]


def _asg_groups(session: AwsSession, sel: Selector) -> list[Resource]:
    groups = _pages(session.client("autoscaling"), "describe_auto_scaling_groups", "AutoScalingGroups")
    out = []
    for g in groups:
        zones = g.get("AvailabilityZones") or []
        out.append(
            Resource(
                "autoscaling:group",
                g["AutoScalingGroupName"],
                g.get("AutoScalingGroupARN"),
                sel.az if sel.az in zones else (zones[0] if len(zones) == 1 else None),
                _tags(g.get("Tags")),
                None,
                {"instances": [i["InstanceId"] for i in g.get("Instances", [])], "desired": g.get("DesiredCapacity")},
            )
        )
    return out


def _rds_clusters(session: AwsSession, sel: Selector) -> list[Resource]:
    clusters = _pages(session.client("rds"), "describe_db_clusters", "DBClusters")
    return [
        Resource(
            "rds:cluster",
            c["DBClusterIdentifier"],
            c.get("DBClusterArn"),
            None,
            _tags(c.get("TagList")),
            c.get("Status"),
            {"members": [m["DBInstanceIdentifier"] for m in c.get("DBClusterMembers", [])]},
        )
        for c in clusters
    ]


def _rds_instances(session: AwsSession, sel: Selector) -> list[Resource]:
    instances = _pages(session.client("rds"), "describe_db_instances", "DBInstances")
    return [
        Resource(
            "rds:db",
            d["DBInstanceIdentifier"],
            d.get("DBInstanceArn"),
            d.get("AvailabilityZone"),
            _tags(d.get("TagList")),
            d.get("DBInstanceStatus"),
            {"cluster": d.get("DBClusterIdentifier")},
        )
        for d in instances
    ]


def _ecs_tasks(session: AwsSession, sel: Selector) -> list[Resource]:
    ecs = session.client("ecs")
    params: dict[str, Any] = {"cluster": sel.cluster, "desiredStatus": "RUNNING"}
    if sel.service:
        params["serviceName"] = sel.service
    arns = _pages(ecs, "list_tasks", "taskArns", **params)
    out = []
    for start in range(0, len(arns), 100):
        described = ecs.describe_tasks(cluster=sel.cluster, tasks=arns[start : start + 100], include=["TAGS"])
        for t in described.get("tasks", []):
            out.append(
                Resource(
                    "ecs:task",
                    t["taskArn"].rsplit("/", 1)[-1],
                    t["taskArn"],
                    t.get("availabilityZone"),
                    _tags(t.get("tags"), "key", "value"),
                    t.get("lastStatus"),
                    {"cluster": sel.cluster},
                )
            )
    return out


def _lambda_functions(session: AwsSession, sel: Selector) -> list[Resource]:
    client = session.client("lambda")
    out = []
    for f in _pages(client, "list_functions", "Functions"):
        if sel.ids and f["FunctionName"] not in sel.ids and f["FunctionArn"] not in sel.ids:
            continue
        tags = client.list_tags(Resource=f["FunctionArn"]).get("Tags", {}) if sel.tags else {}
        out.append(Resource("lambda:function", f["FunctionName"], f["FunctionArn"], None, tags, f.get("State")))
    return out


RESOLVERS: dict[str, Callable[[AwsSession, Selector], list[Resource]]] = {
    "ec2:instance": _ec2_instances,
    "ec2:subnet": _subnets,
    "autoscaling:group": _asg_groups,
    "rds:cluster": _rds_clusters,
    "rds:db": _rds_instances,
    "ecs:task": _ecs_tasks,
    "lambda:function": _lambda_functions,
}


class SelectorOptions(TypedDict, total=False):
    """The keywords of :class:`Selector` after ``kind`` (what every selector function takes)."""

    ids: Iterable[str] | str | None
    tags: Mapping[str, str] | None
    filters: Mapping[str, Iterable[str] | str] | None
    az: str | None
    mode: str
    empty: str
    seed: int | None
    cluster: str | None
    service: str | None


def ec2_instances(**options: Unpack[SelectorOptions]) -> Selector:
    """A selector of EC2 instances (``ec2:instance``; see :class:`Selector` for the arguments)."""
    return Selector("ec2:instance", **options)


def subnets(**options: Unpack[SelectorOptions]) -> Selector:
    """A selector of subnets (``ec2:subnet``; see :class:`Selector` for the arguments)."""
    return Selector("ec2:subnet", **options)


def asg_groups(**options: Unpack[SelectorOptions]) -> Selector:
    """A selector of Auto Scaling groups (``autoscaling:group``; see :class:`Selector`)."""
    return Selector("autoscaling:group", **options)


def rds_clusters(**options: Unpack[SelectorOptions]) -> Selector:
    """A selector of Aurora clusters (``rds:cluster``; see :class:`Selector`)."""
    return Selector("rds:cluster", **options)


def rds_instances(**options: Unpack[SelectorOptions]) -> Selector:
    """A selector of RDS DB instances (``rds:db``; see :class:`Selector`)."""
    return Selector("rds:db", **options)


def ecs_tasks(**options: Unpack[SelectorOptions]) -> Selector:
    """A selector of ECS tasks (``ecs:task``; ``cluster=`` and ``service=`` narrow it; see :class:`Selector`)."""
    return Selector("ecs:task", **options)


def lambda_functions(**options: Unpack[SelectorOptions]) -> Selector:
    """A selector of Lambda functions (``lambda:function``; see :class:`Selector`)."""
    return Selector("lambda:function", **options)


__all__ = [
    "Resource",
    "Selector",
    "SelectorOptions",
    "TargetError",
    "as_selector",
    "asg_groups",
    "ec2_instances",
    "ecs_tasks",
    "lambda_functions",
    "parse_mode",
    "rds_clusters",
    "rds_instances",
    "subnets",
]
