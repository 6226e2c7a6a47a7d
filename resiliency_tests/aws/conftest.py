"""A small web fleet for the AWS experiments: instances tagged app=web behind an Auto Scaling group."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # boto3 and moto load only when an AWS experiment runs, not at collection
    from pytest_resiliency.aws.session import AwsSession


@dataclass
class Fleet:
    group: str
    instances: list[str]
    tag: tuple[str, str] = ("app", "web")


@pytest.fixture
def web_fleet(aws: AwsSession) -> Fleet:
    """An Auto Scaling group of 3 instances tagged app=web over two AZs (created in moto; real AWS: use yours)."""
    if aws.mode != "moto":
        pytest.skip("the web fleet is provisioned in moto only; point the selectors at your own fleet on real AWS")
    from pytest_resiliency.aws.moto_server import TEST_AMI

    ec2, asg = aws.client("ec2"), aws.client("autoscaling")
    image = TEST_AMI  # moto accepts any AMI id (its default AMIs are not loaded, for speed)
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"][:2]]
    asg.create_launch_configuration(LaunchConfigurationName="web", ImageId=image, InstanceType="t3.micro")
    asg.create_auto_scaling_group(
        AutoScalingGroupName="web",
        LaunchConfigurationName="web",
        MinSize=3,
        MaxSize=6,
        DesiredCapacity=3,
        VPCZoneIdentifier=",".join(subnets),
        Tags=[{"Key": "app", "Value": "web", "PropagateAtLaunch": True}],
    )
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]
    return Fleet("web", [i["InstanceId"] for i in group["Instances"]])
