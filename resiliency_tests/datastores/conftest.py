"""Shared settings of the datastore experiments: short baselines, a writer per test.

Each experiment takes a few seconds: 200 writes/s open loop, a baseline of 100
acknowledged writes (0.5 s: 100 writes at risk, every one read back after the crash), a
300 ms recovery window (60 consecutive successes at this rate, as many as the default 1 s
window sees at 60 requests/s, so the shorter window still proves recovery; etcd, at
100 puts/s, keeps 500 ms for 50), then read-back of every written key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_resiliency.experiment import Experiment
    from pytest_resiliency.load.writer import Writer

RATE = 200
BASELINE = 100


@pytest.fixture
def marks(experiment: Experiment) -> Callable[[Any], None]:
    """Put a target's own log truth (ready, elected, DOWN) after the first fault on the chart."""
    from pytest_resiliency.targets.datastores import mark_truth

    def mark(target: Any) -> None:
        mark_truth(experiment, target.truth(), since=experiment.last_injection)

    return mark


def steady(writer: Writer) -> Writer:
    return writer.wait_steady(successes=BASELINE, timeout="20s")


def recovery_proven_at(experiment: Experiment) -> float | None:
    """When the evidence proves recovery: the completion of the first success that recovered.

    That is the upper end of the recovery bracket (``t_recovered``, what the RTO verdict
    judges); a success sent into the outage and answered after it proves nothing about its
    send time.
    """
    episode = experiment.measure().worst
    return None if episode is None else episode.t_recovered
