"""pytest-resiliency: measured RTO and RPO as pytest verdicts.

``from pytest_resiliency import faults, probes`` is all a test needs besides the fixtures.
"""

from . import faults, probes
from .budget import Budget, BudgetError, Criteria, parse_duration
from .experiment import Experiment
from .measure import Measurement, Verdict

__version__ = "0.1.0"

__all__ = [
    "Budget",
    "BudgetError",
    "Criteria",
    "Experiment",
    "Measurement",
    "Verdict",
    "faults",
    "parse_duration",
    "probes",
]
