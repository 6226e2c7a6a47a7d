"""RDS faults: Aurora cluster failover, DB instance reboot (with failover)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ...aws.session import AwsSession
from ...targets.aws import Selector
from ._base import AwsFault


class RdsFailover(AwsFault):
    """Fail over each selected Aurora cluster (to ``target_instance`` if given). Nothing to revert."""

    kind = "rds-failover"
    resource_kind = "rds:cluster"

    def __init__(
        self, targets: Selector | str | Iterable[str], *, target_instance: str | None = None, **kw: Any
    ) -> None:
        super().__init__(targets, **kw)
        self.target_instance = target_instance
        self.writers_before: dict[str, str | None] = {}

    def _inject(self) -> None:
        rds = self.session.client("rds")
        for cluster in self.resolve():
            described = rds.describe_db_clusters(DBClusterIdentifier=cluster.id)["DBClusters"][0]
            writers = [m["DBInstanceIdentifier"] for m in described.get("DBClusterMembers", []) if m["IsClusterWriter"]]
            self.writers_before[cluster.id] = writers[0] if writers else None
            params: dict[str, Any] = {"DBClusterIdentifier": cluster.id}
            if self.target_instance:
                params["TargetDBInstanceIdentifier"] = self.target_instance
            self.mutate("rds", "failover_db_cluster", **params)

    def _revert(self) -> None:
        pass  # a failover is not undone; the experiment measures the clients' recovery

    def params(self) -> dict[str, Any]:
        return {**super().params(), "target_instance": self.target_instance, "writers_before": self.writers_before}


class RdsReboot(AwsFault):
    """Reboot the selected DB instances, with a Multi-AZ failover by default. Nothing to revert."""

    kind = "rds-reboot"
    resource_kind = "rds:db"

    def __init__(self, targets: Selector | str | Iterable[str], *, force_failover: bool = True, **kw: Any) -> None:
        super().__init__(targets, **kw)
        self.force_failover = force_failover

    def _inject(self) -> None:
        for db in self.resolve():
            self.mutate("rds", "reboot_db_instance", DBInstanceIdentifier=db.id, ForceFailover=self.force_failover)

    def _revert(self) -> None:
        pass

    def params(self) -> dict[str, Any]:
        return {**super().params(), "force_failover": self.force_failover}


def rds_failover(
    clusters: Selector | str | Iterable[str],
    *,
    target_instance: str | None = None,
    session: AwsSession | None = None,
    max_duration: float | str | None = None,
) -> RdsFailover:
    """Fail over Aurora clusters (``clusters``: a selector, identifiers or ARNs)."""
    return RdsFailover(clusters, target_instance=target_instance, session=session, max_duration=max_duration)


def rds_reboot(
    instances: Selector | str | Iterable[str],
    *,
    force_failover: bool = True,
    session: AwsSession | None = None,
    max_duration: float | str | None = None,
) -> RdsReboot:
    """Reboot DB instances, failing over to the standby by default."""
    return RdsReboot(instances, force_failover=force_failover, session=session, max_duration=max_duration)


__all__ = ["RdsFailover", "RdsReboot", "rds_failover", "rds_reboot"]
