"""The `aws` fixture: moto by default, real AWS only when allow-listed, dry-run plans."""

from __future__ import annotations

import os

import pytest
from botocore.stub import Stubber

from pytest_resiliency import faults
from pytest_resiliency.aws.moto_server import TEST_AMI, MotoServer
from pytest_resiliency.aws.session import REAL, AwsError, AwsRefused, AwsSession
from pytest_resiliency.faults.base import FaultError

pytestmark = pytest.mark.aws


def test_aws_fixture_gives_moto_clients_without_leaking_credentials(aws: AwsSession) -> None:
    assert aws.mode == "moto" and aws.endpoint_url and aws.endpoint_url.startswith("http://127.0.0.1:")
    assert "AWS_ACCESS_KEY_ID" not in os.environ and "AWS_SECRET_ACCESS_KEY" not in os.environ
    assert aws.client("sts").get_caller_identity()["Account"] == "123456789012"
    assert aws.verify() == "moto"


def test_reset_forgets_every_resource(aws: AwsSession, resiliency_moto_server: MotoServer) -> None:
    """The fixture resets the server before each test; this is that reset."""
    ec2 = aws.client("ec2")
    ec2.run_instances(ImageId=TEST_AMI, MinCount=1, MaxCount=1)
    assert ec2.describe_instances()["Reservations"]
    resiliency_moto_server.reset()
    assert ec2.describe_instances()["Reservations"] == []


def _real(region: str = "eu-west-1", **kw: object) -> AwsSession:
    return AwsSession(REAL, region=region, **kw)  # type: ignore[arg-type]


def _stub_identity(session: AwsSession, account: str) -> Stubber:
    """No credentials exist here: the STS identity is the one stub (the allow-list check reads it)."""
    sts = session.client("sts")
    stub = Stubber(sts)
    stub.add_response("get_caller_identity", {"Account": account, "Arn": "arn:aws:iam::x:user/u", "UserId": "u"})
    stub.activate()
    return stub


def _no_calls(session: AwsSession, service: str) -> Stubber:
    """A stubbed client with no responses queued: any call to it raises, proving none was made."""
    stub = Stubber(session.client(service))
    stub.activate()
    return stub


def test_real_mode_refuses_an_account_not_allow_listed_before_any_call() -> None:
    session = _real(allowed_accounts=["111111111111"], allowed_regions=["eu-west-1"])
    identity = _stub_identity(session, "999999999999")
    ec2 = _no_calls(session, "ec2")
    fault = faults.ec2_stop(["i-0123456789abcdef0"], session=session)
    with pytest.raises(AwsRefused, match="account 999999999999 is not in ini resiliency_allowed_accounts"):
        fault.inject()
    identity.assert_no_pending_responses()
    ec2.assert_no_pending_responses()
    assert not fault.active and session.calls == []


def test_real_mode_refuses_a_region_not_allow_listed_without_even_asking_sts() -> None:
    session = _real(region="us-east-1", allowed_accounts=["111111111111"], allowed_regions=["eu-west-1"])
    _no_calls(session, "sts")
    with pytest.raises(AwsRefused, match="region 'us-east-1' is not in ini resiliency_allowed_regions"):
        session.mutate("ec2", "terminate_instances", InstanceIds=["i-1"])


def test_real_mode_allows_an_allow_listed_account() -> None:
    session = _real(allowed_accounts=["111111111111"], allowed_regions=["eu-west-1"])
    _stub_identity(session, "111111111111")
    assert session.verify() == "111111111111"


def test_bad_modes_are_clear_errors() -> None:
    with pytest.raises(AwsError, match="not one of moto, real"):
        AwsSession("prod")
    with pytest.raises(AwsError, match="endpoint_url"):
        AwsSession("moto")


def test_real_mode_run_is_refused_at_setup(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nresiliency_allowed_regions = eu-west-1\nresiliency_allowed_accounts = 111111111111\n")
    pytester.makepyfile("def test_x(aws):\n    raise AssertionError('must not run')\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--resiliency-aws=real", "--resiliency-aws-region=us-east-1")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*real AWS refused: region 'us-east-1' is not in ini resiliency_allowed_regions*"])


def test_bad_ini_mode_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nresiliency_aws = prod\n")
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*resiliency_aws='prod' is not one of moto, real*"])


def test_dry_run_resolves_targets_and_prints_the_plan_without_acting(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        f"""
        from pytest_resiliency import faults
        from pytest_resiliency.targets import aws as targets

        def test_plan(aws, experiment):
            ec2 = aws.client("ec2")
            ids = [i["InstanceId"] for i in ec2.run_instances(
                ImageId="{TEST_AMI}", MinCount=2, MaxCount=2,
                TagSpecifications=[{{"ResourceType": "instance", "Tags": [{{"Key": "app", "Value": "web"}}]}}],
            )["Instances"]]
            with faults.ec2_stop(targets.ec2_instances(tags={{"app": "web"}})) as fault:
                pass
            assert sorted(fault.ids) == sorted(ids)
            states = {{i["State"]["Name"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}}
            assert states == {{"running"}}
            marks = {{m.kind for m in experiment.timeline.snapshot().marks}}
            assert {{"targets-resolved", "aws-planned"}} <= marks and "aws-call" not in marks
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--resiliency-dry-run")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*resiliency dry-run: planned AWS calls (none made)*",
            "*test_plan*",
            "*ec2.stop_instances(InstanceIds=*",
            "*ec2.start_instances(InstanceIds=*",
        ]
    )


def test_a_fault_without_the_fixture_says_so() -> None:
    with pytest.raises(FaultError, match="request the `aws` fixture"):
        faults.ec2_reboot(["i-1"]).inject()
