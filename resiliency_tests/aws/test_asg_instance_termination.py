"""Blueprint experiment 2: terminate an instance of the Auto Scaling group; the group heals to desired."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_resiliency import faults, probes

if TYPE_CHECKING:  # boto3 loads only when the experiment runs, not at collection
    from pytest_resiliency.aws.session import AwsSession
    from pytest_resiliency.experiment import Experiment

    from .conftest import Fleet

pytestmark = [pytest.mark.aws, pytest.mark.destructive]


# The default 1 s recovery window, not less: a probe that polls the group while moto replaces
# the instance can be answered (one instance short) late on a busy machine, and the shorter the
# window, the likelier the live wait calls the group healed before that failure is in.
@pytest.mark.resiliency(rto="5m", disruption="hardware")
def test_asg_instance_termination_heals_to_desired(aws: AwsSession, web_fleet: Fleet, experiment: Experiment) -> None:
    """Auto Scaling · terminate 1 instance (desired capacity kept) · healthy count probed back to desired.

    The probe of the group's healthy InService count is the evidence the RTO is measured
    from. moto replaces the instance instantly, so here the RTO is ~0; on real AWS it is
    the launch and health-check time of a replacement.
    """
    experiment.monitor(probes.asg_healthy(web_fleet.group), every="100ms")
    fault = faults.asg_terminate_instances(web_fleet.group, instances="COUNT(1)", seed=7)
    with fault:
        pass
    assert experiment.wait_recovered(timeout="60s")
    group = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"]
    now = {i["InstanceId"] for i in group[0]["Instances"]}
    assert len(fault.terminated) == 1
    assert fault.terminated[0] not in now
    assert len(now) == 3
