"""AZ network disruption: a deny-all network ACL swapped onto the AZ's subnets, the original restored.

As FIS ``aws:network:disrupt-connectivity`` does: for each VPC a new ACL is created
with deny-all entries (tagged as ours), each subnet's association is replaced by it,
and on revert every subnet gets its original ACL back before the new ACL is deleted.
"""

from __future__ import annotations

from typing import Any

from ...aws.session import AwsSession
from ...targets.aws import Selector
from ..base import FaultError
from ._base import AwsFault

_TAG = {"Key": "pytest-resiliency", "Value": "az-network-disruption"}


class AzNetworkDisruption(AwsFault):
    """Deny all traffic in and out of the selected subnets (by default every subnet of one AZ)."""

    kind = "az-network-disruption"
    resource_kind = "ec2:subnet"

    def __init__(self, targets: Selector, **kw: Any) -> None:
        super().__init__(targets, **kw)
        self._acls: dict[str, str] = {}  # vpc -> the deny-all ACL we created
        self._swapped: list[tuple[str, str, str]] = []  # (subnet, original acl, association id now)

    def _deny_all_acl(self, vpc: str) -> str:
        found = self._acls.get(vpc)
        if found:
            return found
        created = self.mutate(
            "ec2",
            "create_network_acl",
            VpcId=vpc,
            TagSpecifications=[{"ResourceType": "network-acl", "Tags": [_TAG]}],
        )
        acl = created["NetworkAcl"]["NetworkAclId"] if created else f"(planned deny-all acl in {vpc})"
        self._acls[vpc] = acl
        for egress in (False, True):
            for ipv6 in (False, True):
                cidr = {"Ipv6CidrBlock": "::/0"} if ipv6 else {"CidrBlock": "0.0.0.0/0"}
                self.mutate(
                    "ec2",
                    "create_network_acl_entry",
                    NetworkAclId=acl,
                    RuleNumber=1 + int(ipv6),
                    Protocol="-1",
                    RuleAction="deny",
                    Egress=egress,
                    **cidr,
                )
        return acl

    def _inject(self) -> None:
        ec2 = self.session.client("ec2")
        for subnet in self.resolve():
            found = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet.id]}])
            associations = [
                (acl["NetworkAclId"], a["NetworkAclAssociationId"])
                for acl in found["NetworkAcls"]
                for a in acl.get("Associations", [])
                if a.get("SubnetId") == subnet.id
            ]
            if not associations:
                raise FaultError(f"{self.kind}: subnet {subnet.id} has no network ACL association")
            original, association = associations[0]
            deny = self._deny_all_acl(str(subnet.extra["vpc"]))
            replaced = self.mutate(
                "ec2", "replace_network_acl_association", AssociationId=association, NetworkAclId=deny
            )
            self._swapped.append((subnet.id, original, replaced["NewAssociationId"] if replaced else association))

    def _revert(self) -> None:
        errors = []
        swapped, self._swapped = self._swapped, []
        for subnet, original, association in reversed(swapped):
            try:
                self.mutate("ec2", "replace_network_acl_association", AssociationId=association, NetworkAclId=original)
            except Exception as exc:  # restore every other subnet before reporting
                errors.append(f"{subnet}: {type(exc).__name__}: {exc}")
        if not errors:
            acls, self._acls = self._acls, {}
            for acl in acls.values():
                self.mutate("ec2", "delete_network_acl", NetworkAclId=acl)
        if errors:
            raise FaultError(f"{self.kind}: original ACL not restored on " + "; ".join(errors))

    def params(self) -> dict[str, Any]:
        return {**super().params(), "deny_acls": dict(self._acls)}


def az_network_disruption(
    az: str | None = None,
    *,
    vpc: str | None = None,
    subnets: Selector | None = None,
    session: AwsSession | None = None,
    max_duration: float | str | None = None,
) -> AzNetworkDisruption:
    """Cut the network of one availability zone (its subnets, optionally only in ``vpc``)."""
    if subnets is None:
        if not az:
            raise FaultError("az_network_disruption needs az='us-east-1a' (or subnets=targets.aws.subnets(...))")
        subnets = Selector("ec2:subnet", az=az, filters={"vpc-id": [vpc]} if vpc else None)
    return AzNetworkDisruption(subnets, session=session, max_duration=max_duration)


__all__ = ["AzNetworkDisruption", "az_network_disruption"]
