"""AWS faults, one module per service. Light on purpose: boto3 loads when a fault is first used.

``from pytest_resiliency import faults; faults.ec2_stop(...)`` reaches these through
``faults/__init__``; the names below map to their modules and import on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "ec2_terminate": "ec2",
    "ec2_stop": "ec2",
    "ec2_reboot": "ec2",
    "asg_terminate_instances": "autoscaling",
    "asg_suspend_processes": "autoscaling",
    "rds_failover": "rds",
    "rds_reboot": "rds",
    "ecs_stop_tasks": "ecs",
    "lambda_throttle": "lambda_",
    "az_network_disruption": "network",
    "aws_api_errors": "api_errors",
    "fis_experiment": "fis",
    "ssm_document": "ssm",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"pytest_resiliency.faults.aws has no fault {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
