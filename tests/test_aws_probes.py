"""AWS probes and alarm stop conditions."""

from __future__ import annotations

import pytest

from pytest_resiliency import probes
from pytest_resiliency.aws import stop
from pytest_resiliency.aws.moto_server import TEST_AMI
from pytest_resiliency.aws.session import AwsSession
from pytest_resiliency.experiment import Experiment
from pytest_resiliency.probes import ProbeFailed

pytestmark = pytest.mark.aws


def _alarm(aws: AwsSession, name: str) -> None:
    aws.client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        MetricName="5xx",
        Namespace="app",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
    )


def test_alarm_probe_records_the_alert(aws: AwsSession, experiment: Experiment) -> None:
    _alarm(aws, "errors")
    probe = probes.alarm("errors")
    probe()  # INSUFFICIENT_DATA is healthy
    aws.client("cloudwatch").set_alarm_state(AlarmName="errors", StateValue="ALARM", StateReason="test")
    for _ in range(2):
        with pytest.raises(ProbeFailed, match="alarm errors is ALARM"):
            probe()
    alerts = [m for m in experiment.timeline.snapshot().marks if m.kind == "alert"]
    assert [a.name for a in alerts] == ["errors"]  # recorded once, at the alarm's own state change time
    with pytest.raises(ProbeFailed, match="does not exist"):
        probes.alarm("nope")()


def test_asg_and_rds_probes(aws: AwsSession) -> None:
    asg = aws.client("autoscaling")
    asg.create_launch_configuration(LaunchConfigurationName="lc", ImageId=TEST_AMI, InstanceType="t3.micro")
    subnet = aws.client("ec2").describe_subnets()["Subnets"][0]["SubnetId"]
    asg.create_auto_scaling_group(
        AutoScalingGroupName="g",
        LaunchConfigurationName="lc",
        MinSize=0,
        MaxSize=4,
        DesiredCapacity=2,
        VPCZoneIdentifier=subnet,
    )
    probes.asg_healthy("g")()
    with pytest.raises(ProbeFailed, match="2 healthy InService instances < 3"):
        probes.asg_healthy("g", minimum=3)()
    with pytest.raises(ProbeFailed, match="does not exist"):
        probes.asg_healthy("nope")()
    rds = aws.client("rds")
    rds.create_db_cluster(
        DBClusterIdentifier="c", Engine="aurora-postgresql", MasterUsername="u", MasterUserPassword="password1"
    )
    with pytest.raises(ProbeFailed, match="has no writer"):
        probes.rds_writer("c")()
    rds.create_db_instance(
        DBInstanceIdentifier="c-1", DBClusterIdentifier="c", Engine="aurora-postgresql", DBInstanceClass="db.r5.large"
    )
    probes.rds_writer("c", expected="c-1")()
    with pytest.raises(ProbeFailed, match="writer is c-1, expected c-2"):
        probes.rds_writer("c", expected="c-2")()


def test_target_group_and_ssm_probes(aws: AwsSession) -> None:
    ec2, elb = aws.client("ec2"), aws.client("elbv2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    group = elb.create_target_group(Name="web", Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0][
        "TargetGroupArn"
    ]
    with pytest.raises(ProbeFailed, match="0 healthy targets < 1"):
        probes.target_group_healthy(group)()
    instance = ec2.run_instances(ImageId=TEST_AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    elb.register_targets(TargetGroupArn=group, Targets=[{"Id": instance}])
    probes.target_group_healthy(group)()
    with pytest.raises(ProbeFailed, match="has not been sent"):
        probes.ssm_command(None)()


def test_alarm_stop_condition_aborts_the_experiment(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import time
        from pytest_resiliency import faults
        from pytest_resiliency.aws import stop

        def test_stops(aws, experiment):
            cw = aws.client("cloudwatch")
            cw.put_metric_alarm(AlarmName="errors", MetricName="m", Namespace="n", Statistic="Sum", Period=60,
                                EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
            reverted = []
            condition = stop.stop_on_alarms(experiment, "errors", every="50ms")
            fault = faults.custom(lambda: None, lambda: reverted.append(time.time()), name="break it")
            with fault:
                cw.set_alarm_state(AlarmName="errors", StateValue="ALARM", StateReason="test")
                for _ in range(200):
                    if reverted and not fault.active:  # the revert callback runs before the record closes
                        break
                    time.sleep(0.05)
                assert reverted and not fault.active
            assert condition.condition.tripped_by == "errors"
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*aborted: stop condition 'alarm errors' tripped*"])


def test_stop_condition_bad_input_and_missing_alarm(aws: AwsSession) -> None:
    with pytest.raises(ValueError, match="one or more alarm names"):
        stop.alarms()
    with pytest.raises(LookupError, match="alarm ghost does not exist"):
        stop.alarms("ghost")()
    _alarm(aws, "ok")
    assert stop.alarms("ok")() is False
