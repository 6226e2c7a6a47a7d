"""Fault-injection context managers. Each injects on enter and reverts on exit, always.

The library is spread over modules with one job each — :mod:`.process` (kill, pause,
restart), :mod:`.stress` (cpu, memory, io), :mod:`.disk`, :mod:`.toxics` (the fault proxy),
:mod:`.blackholes`, :mod:`.nftables`, :mod:`.aws` — imported on first use, so ``import
pytest_resiliency`` never pulls in boto3 or psutil. Type checkers see the real signatures
through the ``TYPE_CHECKING`` imports below: a wrong keyword or type is a type error.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import CustomFault, Fault, FaultError, Recorder, custom

if TYPE_CHECKING:
    from .aws.api_errors import aws_api_errors
    from .aws.autoscaling import asg_suspend_processes, asg_terminate_instances
    from .aws.ec2 import ec2_reboot, ec2_stop, ec2_terminate
    from .aws.ecs import ecs_stop_tasks
    from .aws.fis import fis_experiment
    from .aws.lambda_ import lambda_throttle
    from .aws.network import az_network_disruption
    from .aws.rds import rds_failover, rds_reboot
    from .aws.ssm import ssm_document
    from .blackholes import blackhole, port_blackhole
    from .disk import disk_fill
    from .process import kill, pause, restart
    from .stress import cpu_stress, io_stress, memory_stress
    from .toxics import Proxy, bandwidth, down, latency, limit_data, reset_peer, slicer, timeout, toxic

# Public name -> the module (relative to this package) that defines it.
_WHERE = {
    "kill": "process",
    "pause": "process",
    "restart": "process",
    "cpu_stress": "stress",
    "memory_stress": "stress",
    "io_stress": "stress",
    "disk_fill": "disk",
    "Proxy": "toxics",
    "latency": "toxics",
    "bandwidth": "toxics",
    "down": "toxics",
    "reset_peer": "toxics",
    "timeout": "toxics",
    "slicer": "toxics",
    "limit_data": "toxics",
    "toxic": "toxics",
    "blackhole": "blackholes",
    "port_blackhole": "blackholes",
    **{
        name: f"aws.{module}"
        for module, names in {
            "api_errors": ("aws_api_errors",),
            "autoscaling": ("asg_suspend_processes", "asg_terminate_instances"),
            "ec2": ("ec2_reboot", "ec2_stop", "ec2_terminate"),
            "ecs": ("ecs_stop_tasks",),
            "fis": ("fis_experiment",),
            "lambda_": ("lambda_throttle",),
            "network": ("az_network_disruption",),
            "rds": ("rds_failover", "rds_reboot"),
            "ssm": ("ssm_document",),
        }.items()
        for name in names
    },
}

__all__ = [
    "CustomFault",
    "Fault",
    "FaultError",
    "Proxy",
    "Recorder",
    "asg_suspend_processes",
    "asg_terminate_instances",
    "aws_api_errors",
    "az_network_disruption",
    "bandwidth",
    "blackhole",
    "cpu_stress",
    "custom",
    "disk_fill",
    "down",
    "ec2_reboot",
    "ec2_stop",
    "ec2_terminate",
    "ecs_stop_tasks",
    "fis_experiment",
    "io_stress",
    "kill",
    "lambda_throttle",
    "latency",
    "limit_data",
    "memory_stress",
    "pause",
    "port_blackhole",
    "rds_failover",
    "rds_reboot",
    "reset_peer",
    "restart",
    "slicer",
    "ssm_document",
    "timeout",
    "toxic",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"pytest_resiliency.faults has no fault {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
