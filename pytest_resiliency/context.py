"""The running test, in one documented place: what faults, probes and the AWS session report to.

The ``experiment`` fixture binds the test's :class:`~pytest_resiliency.experiment.Experiment`
here and the ``aws`` fixture its :class:`~pytest_resiliency.aws.session.AwsSession`; code that
runs inside the test without being handed them (a fault used as a plain context manager, the
CloudWatch alarm probe, a Chaos Toolkit provider) looks them up here and reports through the
experiment's public methods. Nothing else in the package keeps a "current" global.

A pytest process runs one test at a time (xdist runs tests in separate processes), so a
process-wide slot is right: threads the test starts see it too, which a ``ContextVar`` would
not give them. Standard library only: imported by the fixtures at start-up.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .aws.session import AwsSession
    from .experiment import Experiment

_lock = threading.Lock()
_experiment: Experiment | None = None
_aws_session: AwsSession | None = None


def experiment() -> Experiment | None:
    """The experiment of the test running in this process, if any."""
    return _experiment


def aws_session() -> AwsSession | None:
    """The AWS session of the test running in this process (its ``aws`` fixture), if any."""
    return _aws_session


def bind_experiment(found: Experiment | None) -> None:
    """Make ``found`` the running test's experiment (``None`` when the test ends). The plugin calls this."""
    global _experiment
    with _lock:
        _experiment = found


def bind_aws_session(found: AwsSession | None) -> None:
    """Make ``found`` the running test's AWS session (``None`` when the test ends). The ``aws`` fixture calls this."""
    global _aws_session
    with _lock:
        _aws_session = found


__all__ = ["aws_session", "bind_aws_session", "bind_experiment", "experiment"]
