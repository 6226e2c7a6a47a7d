"""Hooks other plugins (and conftest.py files) may implement.

They are called in the process that runs the test (an xdist worker under ``-n``),
except :func:`pytest_resiliency_result`, which also receives results arriving from
workers, so a dashboard plugin sees every test once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .experiment import Experiment
    from .faults.base import Fault


@pytest.hookspec
def pytest_resiliency_fault_injected(fault: Fault, experiment: Experiment) -> None:
    """A fault has just been injected (its ``record.injected_at`` is ``t_inject``)."""


@pytest.hookspec
def pytest_resiliency_fault_reverted(fault: Fault, experiment: Experiment) -> None:
    """A fault has been reverted (or its revert failed: see ``fault.record.error``)."""


@pytest.hookspec
def pytest_resiliency_measured(item: pytest.Item, experiment: Experiment, payload: dict[str, Any]) -> None:
    """The test's measurement and verdict are final; ``payload`` is what reports receive."""


@pytest.hookspec
def pytest_resiliency_breached(item: pytest.Item, experiment: Experiment, payload: dict[str, Any]) -> None:
    """The test breached its budget; called just before it is failed."""


@pytest.hookspec
def pytest_resiliency_result(report: pytest.TestReport, payload: dict[str, Any]) -> None:
    """A test report carrying a resiliency payload reached this process (controller or serial run)."""
