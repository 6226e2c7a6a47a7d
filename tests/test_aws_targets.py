"""FIS-like selectors: ids, tags, filters, AZ, ALL/COUNT/PERCENT, empty selections."""

from __future__ import annotations

import pytest

from pytest_resiliency.aws.moto_server import TEST_AMI
from pytest_resiliency.aws.session import AwsSession
from pytest_resiliency.targets import aws as targets
from pytest_resiliency.targets.aws import Selector, TargetError, parse_mode

pytestmark = pytest.mark.aws


def _instances(aws: AwsSession, n: int, az: str, **tags: str) -> list[str]:
    subnet = aws.client("ec2").describe_subnets(Filters=[{"Name": "availability-zone", "Values": [az]}])["Subnets"][0]
    made = aws.client("ec2").run_instances(
        ImageId=TEST_AMI,
        MinCount=n,
        MaxCount=n,
        SubnetId=subnet["SubnetId"],
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
    )
    return sorted(i["InstanceId"] for i in made["Instances"])


@pytest.fixture
def fleet(aws: AwsSession) -> dict[str, list[str]]:
    return {
        "web-a": _instances(aws, 4, "us-east-1a", app="web"),
        "web-b": _instances(aws, 2, "us-east-1b", app="web"),
        "db": _instances(aws, 1, "us-east-1a", app="db"),
    }


def test_select_by_tags_az_ids_and_filters(aws: AwsSession, fleet: dict[str, list[str]]) -> None:
    web = sorted(fleet["web-a"] + fleet["web-b"])
    assert [r.id for r in targets.ec2_instances(tags={"app": "web"}).resolve(aws)] == web
    assert [r.id for r in targets.ec2_instances(tags={"app": "web"}, az="us-east-1b").resolve(aws)] == fleet["web-b"]
    assert [r.id for r in targets.ec2_instances(ids=fleet["db"]).resolve(aws)] == fleet["db"]
    subnet_a = targets.ec2_instances(ids=fleet["db"]).resolve(aws)[0].extra["subnet"]
    by_filter = targets.ec2_instances(filters={"subnet-id": subnet_a}).resolve(aws)  # a describe filter, sent as is
    assert sorted(r.id for r in by_filter) == sorted(fleet["web-a"] + fleet["db"])
    arn = targets.ec2_instances(ids=fleet["db"]).resolve(aws)[0].arn
    assert arn and [r.id for r in targets.ec2_instances(ids=[arn]).resolve(aws)] == fleet["db"]


def test_count_and_percent_pick_at_random_within_the_match(aws: AwsSession, fleet: dict[str, list[str]]) -> None:
    web = set(fleet["web-a"] + fleet["web-b"])
    two = targets.ec2_instances(tags={"app": "web"}, mode="COUNT(2)").resolve(aws)
    assert len(two) == 2 and {r.id for r in two} <= web
    half = targets.ec2_instances(tags={"app": "web"}, mode="PERCENT(50)").resolve(aws)
    assert len(half) == 3 and {r.id for r in half} <= web
    assert len(targets.ec2_instances(tags={"app": "web"}, mode="PERCENT(1)").resolve(aws)) == 1  # rounds up
    assert len(targets.ec2_instances(tags={"app": "web"}, mode="COUNT(99)").resolve(aws)) == 6
    picks = {
        tuple(r.id for r in targets.ec2_instances(tags={"app": "web"}, mode="COUNT(1)").resolve(aws)) for _ in range(20)
    }
    assert len(picks) > 1  # random, like FIS (20 draws of 1 in 6: all equal has probability 6e-16)
    seeded = targets.ec2_instances(tags={"app": "web"}, mode="COUNT(2)", seed=3)
    assert seeded.resolve(aws) == seeded.resolve(aws)


def test_empty_selection_is_an_error_unless_skip(aws: AwsSession, fleet: dict[str, list[str]]) -> None:
    with pytest.raises(TargetError, match="matched no ec2:instance; pass empty='skip'"):
        targets.ec2_instances(tags={"app": "nothing"}).resolve(aws)
    assert targets.ec2_instances(tags={"app": "nothing"}, empty="skip").resolve(aws) == []
    with pytest.raises(TargetError, match=r"ec2:instance not found: .*i-00000000000000000"):
        targets.ec2_instances(ids=["i-00000000000000000"]).resolve(aws)


def test_other_kinds_resolve(aws: AwsSession) -> None:
    subnets = targets.subnets(az="us-east-1c").resolve(aws)
    assert len(subnets) == 1 and subnets[0].az == "us-east-1c" and subnets[0].extra["vpc"]
    rds = aws.client("rds")
    rds.create_db_cluster(
        DBClusterIdentifier="orders",
        Engine="aurora-postgresql",
        MasterUsername="u",
        MasterUserPassword="password1",
        Tags=[{"Key": "team", "Value": "orders"}],
    )
    assert [r.id for r in targets.rds_clusters(tags={"team": "orders"}).resolve(aws)] == ["orders"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "ec2:volume", "ids": ["v"]}, "target kind 'ec2:volume' is not one of"),
        ({"kind": "ec2:instance"}, "needs at least one of ids, tags, filters or az"),
        ({"kind": "ec2:instance", "ids": ["i-1"], "mode": "SOME(2)"}, "selection mode 'SOME(2)' is not"),
        ({"kind": "ec2:instance", "ids": ["i-1"], "mode": "COUNT(0)"}, "COUNT needs n >= 1"),
        ({"kind": "ec2:instance", "ids": ["i-1"], "mode": "PERCENT(150)"}, "PERCENT needs 0 < n <= 100"),
        ({"kind": "ec2:instance", "ids": ["i-1"], "empty": "ignore"}, "empty='ignore' must be"),
        ({"kind": "rds:cluster", "filters": {"x": "y"}}, "describe filters are supported for ec2"),
        ({"kind": "ecs:task"}, "ecs:task selectors need cluster="),
        ({"kind": "ec2:instance", "ids": [""]}, "ids must be non-empty strings"),
    ],
)
def test_bad_selectors_are_clear_errors(kwargs: dict[str, object], message: str) -> None:
    kind = kwargs.pop("kind")
    with pytest.raises(TargetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Selector(str(kind), **kwargs)  # type: ignore[arg-type]


def test_parse_mode() -> None:
    assert parse_mode("ALL") == ("ALL", 0)
    assert parse_mode("COUNT(3)") == ("COUNT", 3)
    assert parse_mode(" PERCENT(12.5) ") == ("PERCENT", 12.5)
