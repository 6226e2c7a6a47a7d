"""Process faults on the orders API: a worker killed, a worker stuck.

Run alone: ``python3 -m pytest resiliency_tests/test_process_faults.py``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from pytest_resiliency import faults
from resiliency_tests.conftest import BASELINE, Demo

if TYPE_CHECKING:
    from pytest_resiliency.experiment import Experiment
    from resiliency_tests.conftest import Load

pytestmark = [pytest.mark.local, pytest.mark.destructive, pytest.mark.slow]


@pytest.mark.resiliency(rto="5s", rpo=0, disruption="software")
def test_worker_killed_recovers_within_rto(demo: Demo, load: Load, experiment: Experiment) -> None:
    """Orders API worker killed (SIGKILL).

    * Service: orders API, 1 instance, fsync durability, supervisor restart policy
      ``always`` with a 200 ms restart delay.
    * Load: locust, 10 users, 60 requests/s total, 30 % writes, for about 10 s.
    * Fault: SIGKILL of the worker's process group, once; the supervisor restarts it.
    * Validated: RTO <= 5 s (time from the kill until requests succeed again, measured from
      what the load saw); RPO = 0 (every acknowledged order is read back after the restart).
    """
    orders = demo.orders("fsync")
    traffic = load(orders.url, users=10, rate=60, writes=0.3, request_timeout="2s")
    traffic.wait_steady(successes=BASELINE)
    with faults.kill(orders):
        pass
    traffic.wait_recovered(timeout="30s")
    traffic.stop()  # read back once no write is in flight any more
    ledger = experiment.verify_writes(traffic.read_back)
    assert ledger.acknowledged > 0 and orders.restarts == 1


@pytest.mark.resiliency(rto="6s", disruption="software")
def test_stuck_worker_recovers_within_rto(demo: Demo, load: Load, experiment: Experiment) -> None:
    """Orders API worker stuck (SIGSTOP for 3 s, then SIGCONT).

    * Service: orders API, 1 instance, fsync durability.
    * Load: locust, 10 users, 60 requests/s, 30 % writes, 1 s request timeout, about 12 s.
    * Fault: SIGSTOP of the worker for 3 s: the port still accepts connections but nothing
      answers, the nastiest way to be down. The supervisor sees no exit and does nothing.
    * Validated: RTO <= 6 s (requests time out during the pause and succeed again after it).
      Requests sent in the last second of the pause (the request timeout) are answered when
      it ends; recovery is dated at those answers, never at their send time: RTO >= pause.
    """
    orders = demo.orders("fsync")
    traffic = load(orders.url, users=10, rate=60, writes=0.3, request_timeout="1s")
    traffic.wait_steady(successes=BASELINE)
    with faults.pause(orders):
        time.sleep(3)  # the fault's duration, not a synchronisation
    traffic.wait_recovered(timeout="30s")
    rto = experiment.measure().rto
    assert rto is not None and rto >= 3 - 0.05, f"nothing answered during the 3 s pause, yet RTO {rto}"
    assert orders.restarts == 0
