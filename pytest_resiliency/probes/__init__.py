"""Probes: single health checks that ``experiment.monitor(probe, every=...)`` turns into evidence.

A probe is a callable that returns normally when the check passes and raises (or returns
``False``) when it fails; the exception text becomes the operation's error.

``probes.http``, ``probes.tcp`` and ``probes.call`` are here; the probes of the other
capabilities (``process``, the AWS probes, ``prometheus``) are imported on first use, so
``import pytest_resiliency.probes`` never pulls in boto3. Type checkers see every probe
with its real signature (the ``TYPE_CHECKING`` imports below): a wrong keyword is an error
in the user's code, not an ``Any``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import DEFAULT_PROBE_TIMEOUT, Probe, ProbeFailed, as_probe, call, run_once
from .net import http, tcp

if TYPE_CHECKING:
    from ..aws.probes import alarm, asg_healthy, rds_writer, ssm_command, target_group_healthy
    from ..prometheus import PrometheusError, PrometheusProbe, prometheus
    from ..targets.probes import process

# name -> the module that defines it, imported when the name is first used
_LAZY = {
    "process": "pytest_resiliency.targets.probes",
    "alarm": "pytest_resiliency.aws.probes",
    "asg_healthy": "pytest_resiliency.aws.probes",
    "rds_writer": "pytest_resiliency.aws.probes",
    "ssm_command": "pytest_resiliency.aws.probes",
    "target_group_healthy": "pytest_resiliency.aws.probes",
    "prometheus": "pytest_resiliency.prometheus",
    "PrometheusError": "pytest_resiliency.prometheus",
    "PrometheusProbe": "pytest_resiliency.prometheus",
}

__all__ = [
    "DEFAULT_PROBE_TIMEOUT",
    "Probe",
    "ProbeFailed",
    "PrometheusError",
    "PrometheusProbe",
    "alarm",
    "as_probe",
    "asg_healthy",
    "call",
    "http",
    "process",
    "prometheus",
    "rds_writer",
    "run_once",
    "ssm_command",
    "target_group_healthy",
    "tcp",
]


def __getattr__(name: str) -> Any:
    """The probes of the other capabilities (process, CloudWatch alarm...), imported on first use."""
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"pytest_resiliency.probes has no probe {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
