"""pytest-resiliency: measured RTO and RPO as pytest verdicts.

``from pytest_resiliency import faults, probes`` is all a test needs besides the fixtures.
Names are resolved on first use, so importing the package (as pytest does at start-up, and
as locust does when it loads the sink locustfile) costs next to nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import faults, probes
    from .aws.session import AwsSession
    from .budget import Budget, BudgetError, Criteria, parse_duration
    from .experiment import Experiment
    from .measure import Measurement
    from .targets.fixtures import (
        EtcdClusterFactory,
        HAProxyFactory,
        PostgresServerFactory,
        RedisServerFactory,
        ServiceFactory,
    )
    from .targets.service import Service, ServiceGroup
    from .verdict import Verdict

__version__ = "0.1.0"

_LAZY = {
    "faults": ".faults",
    "probes": ".probes",
    "Budget": ".budget",
    "BudgetError": ".budget",
    "Criteria": ".budget",
    "parse_duration": ".budget",
    "Experiment": ".experiment",
    "Measurement": ".measure",
    "Verdict": ".verdict",
    # the fixtures' types, for annotating a test's parameters
    "AwsSession": ".aws.session",
    "EtcdClusterFactory": ".targets.fixtures",
    "HAProxyFactory": ".targets.fixtures",
    "PostgresServerFactory": ".targets.fixtures",
    "RedisServerFactory": ".targets.fixtures",
    "Service": ".targets.service",
    "ServiceFactory": ".targets.fixtures",
    "ServiceGroup": ".targets.service",
}

__all__ = [
    "AwsSession",
    "Budget",
    "BudgetError",
    "Criteria",
    "EtcdClusterFactory",
    "Experiment",
    "HAProxyFactory",
    "Measurement",
    "PostgresServerFactory",
    "RedisServerFactory",
    "Service",
    "ServiceFactory",
    "ServiceGroup",
    "Verdict",
    "faults",
    "parse_duration",
    "probes",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'pytest_resiliency' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name], __name__)
    value = module if name in ("faults", "probes") else getattr(module, name)
    globals()[name] = value
    return value
