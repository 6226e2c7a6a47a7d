"""Blueprint experiment 1: memory stress on the web instances through the shipped SSM document."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_resiliency import faults, probes
from pytest_resiliency.targets import aws as targets

if TYPE_CHECKING:  # boto3 loads only when the experiment runs, not at collection
    from pytest_resiliency.aws.session import AwsSession
    from pytest_resiliency.experiment import Experiment

    from .conftest import Fleet

pytestmark = [pytest.mark.aws, pytest.mark.destructive]


# The default 1 s recovery window, as for the termination experiment (a probe in flight while
# moto answers slowly must be in before the group is called steady).
@pytest.mark.resiliency(rto="60s", disruption="software")
def test_ec2_memory_stress_on_tagged_instances(aws: AwsSession, web_fleet: Fleet, experiment: Experiment) -> None:
    """EC2 · memory-stress SSM document (80% for 60 s) on every instance tagged app=web.

    moto never executes SSM commands: against it this checks the API choreography
    (document created once under a content-hashed name, parameters validated and sent,
    every invocation polled to a terminal state, targets resolved by tag and recorded).
    The document itself is executed for real on this machine by tests/test_ssm_runner.py.
    """
    experiment.monitor(probes.asg_healthy(web_fleet.group), every="100ms")
    stress = faults.ssm_document(
        "memory-stress",
        targets.ec2_instances(tags={"app": "web"}),
        {"DurationSeconds": 60, "Percent": 80},
        poll="100ms",
    )
    with stress:
        invocations = stress.wait(timeout="30s")
    assert sorted(invocations) == sorted(web_fleet.instances)
    assert {i["Status"] for i in invocations.values()} == {"Success"}
    sent = aws.client("ssm").list_commands(CommandId=stress.command_id)["Commands"][0]
    assert sent["DocumentName"].startswith("PytestResiliency-memory-stress-")
    assert sent["Parameters"]["Percent"] == ["80"]
    resolved = [m for m in experiment.timeline.snapshot().marks if m.kind == "targets-resolved"]
    assert resolved[0].detail["targets"] == sorted(web_fleet.instances)
