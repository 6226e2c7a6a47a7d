"""AWS faults against the embedded moto server: each acts, reverts, and records its targets.

moto checks the API choreography (which calls, in which order, with what), not fault
effects or timing; what moto cannot do at all (FIS experiments, failed SSM commands)
is stubbed with botocore's Stubber, and says so.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from pytest_resiliency import faults
from pytest_resiliency.aws.moto_server import TEST_AMI
from pytest_resiliency.aws.session import AwsSession
from pytest_resiliency.experiment import Experiment
from pytest_resiliency.faults.base import FaultError
from pytest_resiliency.targets import aws as targets

pytestmark = pytest.mark.aws


def _run(aws: AwsSession, n: int = 2, **tags: str) -> list[str]:
    made = aws.client("ec2").run_instances(
        ImageId=TEST_AMI,
        MinCount=n,
        MaxCount=n,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
    )
    return sorted(i["InstanceId"] for i in made["Instances"])


def _states(aws: AwsSession, ids: list[str]) -> set[str]:
    found = aws.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    return {i["State"]["Name"] for r in found for i in r["Instances"]}


def test_ec2_stop_stops_and_starts_again(aws: AwsSession, experiment: Experiment) -> None:
    web, other = _run(aws, app="web"), _run(aws, 1, app="db")
    with faults.ec2_stop(targets.ec2_instances(tags={"app": "web"})) as fault:
        assert _states(aws, web) == {"stopped"}
    assert _states(aws, web) == {"running"} and _states(aws, other) == {"running"}
    record = experiment.timeline.snapshot().faults[0]
    assert record.params["targets"] == web and record.target == f"ec2:instance {', '.join(web)}"
    assert record.reverted_at is not None and not fault.active
    calls = [m.name for m in experiment.timeline.snapshot().marks if m.kind == "aws-call"]
    assert calls == ["ec2.stop_instances", "ec2.start_instances"]


def test_ec2_terminate_and_reboot(aws: AwsSession) -> None:
    ids = _run(aws, 3, app="web")
    with faults.ec2_reboot(ids[:1]):
        pass
    with faults.ec2_terminate(targets.ec2_instances(tags={"app": "web"}, mode="COUNT(1)", seed=1)) as fault:
        pass
    assert _states(aws, fault.ids) == {"terminated"}
    assert _states(aws, [i for i in ids if i not in fault.ids]) == {"running"}


def test_empty_selection_fails_or_skips(aws: AwsSession) -> None:
    with (
        pytest.raises(FaultError, match="matched no ec2:instance"),
        faults.ec2_stop(targets.ec2_instances(tags={"a": "b"})),
    ):
        pass
    with faults.ec2_stop(targets.ec2_instances(tags={"a": "b"}, empty="skip")) as fault:
        assert fault.skipped and fault.target == "ec2:instance (none selected)"


def _group(aws: AwsSession, name: str = "web", desired: int = 3) -> list[str]:
    asg = aws.client("autoscaling")
    subnets = [s["SubnetId"] for s in aws.client("ec2").describe_subnets()["Subnets"][:2]]
    asg.create_launch_configuration(LaunchConfigurationName=name, ImageId=TEST_AMI, InstanceType="t3.micro")
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchConfigurationName=name,
        MinSize=1,
        MaxSize=6,
        DesiredCapacity=desired,
        VPCZoneIdentifier=",".join(subnets),
    )
    return _members(aws, name)


def _members(aws: AwsSession, name: str) -> list[str]:
    groups = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    return sorted(i["InstanceId"] for i in groups["AutoScalingGroups"][0]["Instances"])


def test_asg_terminate_instances_and_suspend_processes(aws: AwsSession) -> None:
    before = _group(aws)
    with faults.asg_terminate_instances("web", instances="PERCENT(50)", seed=2) as fault:
        pass
    after = _members(aws, "web")
    assert len(fault.terminated) == 2 and not set(fault.terminated) & set(after) and len(after) == 3
    assert set(fault.terminated) <= set(before)
    asg = aws.client("autoscaling")
    asg.suspend_processes(AutoScalingGroupName="web", ScalingProcesses=["AZRebalance"])

    def suspended() -> set[str]:
        group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]
        return {p["ProcessName"] for p in group["SuspendedProcesses"]}

    with faults.asg_suspend_processes("web", processes=["Launch", "AZRebalance"]):
        assert suspended() == {"Launch", "AZRebalance"}
    assert suspended() == {"AZRebalance"}  # what was suspended before the fault stays suspended
    with pytest.raises(FaultError, match="unknown processes \\['Lunch'\\]"):
        faults.asg_suspend_processes("web", processes=["Lunch"])


def test_rds_failover_and_reboot(aws: AwsSession) -> None:
    rds = aws.client("rds")
    rds.create_db_cluster(
        DBClusterIdentifier="orders", Engine="aurora-postgresql", MasterUsername="u", MasterUserPassword="password1"
    )
    for name in ("orders-1", "orders-2"):
        rds.create_db_instance(
            DBInstanceIdentifier=name,
            DBClusterIdentifier="orders",
            Engine="aurora-postgresql",
            DBInstanceClass="db.r5.large",
        )

    def writer() -> str:
        members = rds.describe_db_clusters(DBClusterIdentifier="orders")["DBClusters"][0]["DBClusterMembers"]
        return str(next(m["DBInstanceIdentifier"] for m in members if m["IsClusterWriter"]))

    first = writer()
    with faults.rds_failover("orders") as fault:
        pass
    assert fault.writers_before == {"orders": first} and writer() != first
    with faults.rds_reboot(targets.rds_instances(ids=["orders-1"])) as reboot:
        pass
    assert reboot.ids == ["orders-1"]


def test_ecs_stop_tasks(aws: AwsSession) -> None:
    ecs = aws.client("ecs")
    ecs.create_cluster(clusterName="shop")
    ecs.register_task_definition(
        family="api",
        containerDefinitions=[{"name": "api", "image": "api", "memory": 128}],
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
    )
    subnet = aws.client("ec2").describe_subnets()["Subnets"][0]["SubnetId"]
    ecs.run_task(
        cluster="shop",
        taskDefinition="api",
        count=3,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": []}},
    )
    with faults.ecs_stop_tasks(targets.ecs_tasks(cluster="shop", mode="COUNT(2)")) as fault:
        pass
    stopped = ecs.describe_tasks(cluster="shop", tasks=[r.arn for r in fault.resources])["tasks"]
    assert len(stopped) == 2 and {t["desiredStatus"] for t in stopped} == {"STOPPED"}


def _function(aws: AwsSession, name: str) -> None:
    role = aws.client("iam").create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("f.py", "def handler(event, context):\n    return 1\n")
    aws.client("lambda").create_function(
        FunctionName=name, Runtime="python3.11", Role=role, Handler="f.handler", Code={"ZipFile": code.getvalue()}
    )


def test_lambda_throttle_restores_the_previous_setting(aws: AwsSession) -> None:
    lam = aws.client("lambda")
    _function(aws, "free")
    _function(aws, "capped")
    lam.put_function_concurrency(FunctionName="capped", ReservedConcurrentExecutions=5)

    def reserved(name: str) -> Any:
        return lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")

    with faults.lambda_throttle(["free", "capped"]):
        assert reserved("free") == 0 and reserved("capped") == 0
    assert reserved("free") is None and reserved("capped") == 5


def test_az_network_disruption_swaps_and_restores_acls(aws: AwsSession) -> None:
    ec2 = aws.client("ec2")

    def acl_of(subnet: str) -> str:
        found = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])
        return str(found["NetworkAcls"][0]["NetworkAclId"])

    subnet = ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": ["us-east-1a"]}])["Subnets"][0]
    other = ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": ["us-east-1b"]}])["Subnets"][0]
    original, untouched = acl_of(subnet["SubnetId"]), acl_of(other["SubnetId"])
    with faults.az_network_disruption("us-east-1a") as fault:
        deny = acl_of(subnet["SubnetId"])
        assert deny != original and acl_of(other["SubnetId"]) == untouched
        entries = ec2.describe_network_acls(NetworkAclIds=[deny])["NetworkAcls"][0]["Entries"]
        assert {(e["RuleAction"], e["Egress"]) for e in entries if e["RuleNumber"] < 100} == {
            ("deny", True),
            ("deny", False),
        }
    assert acl_of(subnet["SubnetId"]) == original
    assert deny not in {a["NetworkAclId"] for a in ec2.describe_network_acls()["NetworkAcls"]}
    assert fault.params()["deny_acls"] == {}
    with pytest.raises(FaultError, match="needs az="):
        faults.az_network_disruption()


def test_aws_api_errors_fail_boto3_calls_then_stop(aws: AwsSession) -> None:
    sqs = aws.client("sqs")
    with faults.aws_api_errors("sqs", ["list_queues"], rate=1.0) as fault:
        with pytest.raises(ClientError, match="ThrottlingException") as raised:
            sqs.list_queues()
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        later = boto3.client(
            "sqs",
            region_name="us-east-1",
            endpoint_url=aws.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        with pytest.raises(ClientError, match="ThrottlingException"):
            later.list_queues()  # a client made afterwards, from boto3's default session
        sqs.create_queue(QueueName="q")  # other operations untouched
    sqs.list_queues()
    later.list_queues()
    assert fault.injected == 2


def test_aws_api_errors_rate_is_a_fraction_of_calls(aws: AwsSession) -> None:
    sts = aws.client("sts")
    codes = []
    with faults.aws_api_errors("sts", "*", error="ServiceUnavailable", status=503, rate=0.5, seed=4) as fault:
        for _ in range(200):
            try:
                sts.get_caller_identity()
            except ClientError as exc:
                codes.append(exc.response["Error"]["Code"])
    failed = len(codes)
    assert set(codes) == {"ServiceUnavailable"}
    assert fault.calls == 200 and fault.injected == failed and 70 <= failed <= 130


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("nosuchservice",), {}, "unknown service 'nosuchservice'"),
        (("sqs", ["ListQueuez"]), {}, "sqs has no operation 'ListQueuez'"),
        (("sqs",), {"rate": 0}, "rate=0 must be a fraction"),
        (("sqs",), {"error": "Bad Code;"}, "must be an AWS error code"),
        (("sqs",), {"status": 200}, "must be an HTTP error status"),
    ],
)
def test_aws_api_errors_bad_input(args: tuple[Any, ...], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(FaultError, match=message):
        faults.aws_api_errors(*args, **kwargs)


def test_ssm_document_choreography_against_moto(aws: AwsSession) -> None:
    """moto never executes SSM commands: this checks create-once, send, poll to a terminal state."""
    ids = _run(aws, 2, app="web")
    for _ in range(2):
        with faults.ssm_document("cpu-stress", targets.ec2_instances(tags={"app": "web"}), {"DurationSeconds": 5}) as f:
            assert sorted(f.wait(timeout="10s")) == ids
    docs = aws.client("ssm").list_documents(Filters=[{"Key": "Owner", "Values": ["Self"]}])["DocumentIdentifiers"]
    assert [d["Name"] for d in docs] == [f.document_name]  # created once, reused
    sent = aws.client("ssm").list_commands(CommandId=f.command_id)["Commands"][0]
    assert sent["Parameters"]["DurationSeconds"] == ["5"] and sent["Parameters"]["CPU"] == ["0"]


@pytest.mark.parametrize("bad", ["; rm -rf /", "$(id)", "`id`", "5\nid"])
def test_ssm_document_refuses_injection_before_any_call(bad: str) -> None:
    with pytest.raises(FaultError, match=r"DurationSeconds=.* does not match|control character"):
        faults.ssm_document("cpu-stress", ["i-1"], {"DurationSeconds": bad})


def test_ssm_document_fails_with_each_instances_error_and_cancels(aws: AwsSession) -> None:
    """moto cannot make a command fail or stay in progress: the SSM client is stubbed for that."""
    ids = _run(aws, 2, app="web")
    stub = Stubber(aws.client("ssm"))
    stub.add_response("describe_document", {"Document": {"Name": "AWS-RunShellScript"}}, {"Name": ANY})
    stub.add_response("send_command", {"Command": {"CommandId": "00000000-0000-0000-0000-000000000001"}}, None)
    for instance in ids:  # revert: one still running, one failed
        status = "InProgress" if instance == ids[0] else "Failed"
        stub.add_response(
            "get_command_invocation",
            {"Status": status, "StatusDetails": status, "StandardErrorContent": f"boom on {instance}"},
            {"CommandId": "00000000-0000-0000-0000-000000000001", "InstanceId": instance},
        )
    stub.add_response(
        "cancel_command", {}, {"CommandId": "00000000-0000-0000-0000-000000000001", "InstanceIds": [ids[0]]}
    )
    stub.add_response(
        "get_command_invocation",
        {"Status": "Cancelled", "StatusDetails": "Cancelled"},
        {"CommandId": "00000000-0000-0000-0000-000000000001", "InstanceId": ids[0]},
    )
    with stub:
        fault = faults.ssm_document("kill-process", ids, {"ProcessName": "nginx"}, poll="10ms")
        fault.inject()
        with pytest.raises(FaultError, match=f"failed on {ids[1]}: Failed \\(Failed\\): boom on {ids[1]}"):
            fault.revert()
        stub.assert_no_pending_responses()


def test_fis_experiment_start_wait_stop(aws: AwsSession) -> None:
    """moto stores FIS templates but cannot start experiments: start/get/stop are stubbed."""
    fis = aws.client("fis")
    stub = Stubber(fis)
    template = {
        "actions": {"stop": {"actionId": "aws:ec2:stop-instances"}},
        "stopConditions": [{"source": "none"}],
        "roleArn": "arn:aws:iam::123456789012:role/fis",
        "targets": {},
    }
    stub.add_response("create_experiment_template", {"experimentTemplate": {"id": "EXT1"}}, None)
    stub.add_response("start_experiment", {"experiment": {"id": "EXP1"}}, None)
    stub.add_response(
        "get_experiment", {"experiment": {"id": "EXP1", "state": {"status": "initiating"}}}, {"id": "EXP1"}
    )
    stub.add_response("get_experiment", {"experiment": {"id": "EXP1", "state": {"status": "running"}}}, {"id": "EXP1"})
    stub.add_response("get_experiment", {"experiment": {"id": "EXP1", "state": {"status": "running"}}}, {"id": "EXP1"})
    stub.add_response("stop_experiment", {}, {"id": "EXP1"})
    stub.add_response("get_experiment", {"experiment": {"id": "EXP1", "state": {"status": "stopping"}}}, {"id": "EXP1"})
    stub.add_response("get_experiment", {"experiment": {"id": "EXP1", "state": {"status": "stopped"}}}, {"id": "EXP1"})
    stub.add_response("delete_experiment_template", {}, {"id": "EXT1"})
    with stub:
        with faults.fis_experiment(template, poll="10ms") as fault:
            assert fault.experiment_id == "EXP1"
        stub.assert_no_pending_responses()
    assert fault.final_state == {"status": "stopped"}
    with pytest.raises(FaultError, match="lacks stopConditions, roleArn"):
        faults.fis_experiment({"actions": {}})
