"""Process faults on the orders API: a worker killed, a worker stuck.

Run alone: ``python3 -m pytest resiliency_tests/test_process_faults.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_resiliency import faults
from resiliency_tests.conftest import RATE, USERS, Demo, await_evidence

if TYPE_CHECKING:
    from pytest_resiliency.experiment import Experiment
    from resiliency_tests.conftest import Load

pytestmark = [pytest.mark.local, pytest.mark.destructive, pytest.mark.slow]


# Recovery window 300 ms: at 200 req/s, 60 consecutive successes after the restart, as many as
# the default 1 s window saw at the 60 req/s these experiments used to run.
@pytest.mark.resiliency(rto="5s", rpo=0, recovery_window="300ms", disruption="software")
def test_worker_killed_recovers_within_rto(demo: Demo, load: Load, experiment: Experiment) -> None:
    """Orders API worker killed (SIGKILL).

    * Service: orders API, 1 instance, fsync durability, supervisor restart policy
      ``always`` with a 200 ms restart delay.
    * Load: locust, 10 users, 200 requests/s total, 30 % writes, about 2 s.
    * Fault: SIGKILL of the worker's process group, once; the supervisor restarts it.
    * Validated: RTO <= 5 s (time from the kill until requests succeed again, measured from
      what the load saw, to within about 5 ms at this rate); RPO = 0 (every acknowledged
      order is read back after the restart).
    """
    orders = demo.orders("fsync")
    traffic = load(orders.url, users=USERS, rate=RATE, writes=0.3, request_timeout="2s")
    # Baseline 100 successes (0.5 s): about 30 writes acknowledged before the kill, each one
    # read back after the restart, the same number the RPO 0 claim rested on before.
    traffic.wait_steady(successes=100)
    with faults.kill(orders):
        pass
    traffic.wait_recovered(timeout="30s")
    traffic.stop()  # read back once no write is in flight any more
    ledger = experiment.verify_writes(traffic.read_back)
    assert ledger.acknowledged > 0 and orders.restarts == 1


# Recovery window 300 ms: 60 successes after SIGCONT; a worker still stuck would time out
# every one of them.
@pytest.mark.resiliency(rto="6s", recovery_window="300ms", disruption="software")
def test_stuck_worker_recovers_within_rto(demo: Demo, load: Load, experiment: Experiment) -> None:
    """Orders API worker stuck (SIGSTOP until every user has timed out twice, then SIGCONT).

    * Service: orders API, 1 instance, fsync durability.
    * Load: locust, 10 users, 200 requests/s, 30 % writes, 500 ms request timeout, about 3 s.
    * Fault: SIGSTOP of the worker, held until the load has seen 20 timeouts (each of the 10
      users timed out twice, so the pause lasts at least two request timeouts, about 1 s):
      the port still accepts connections but nothing answers, the nastiest way to be down.
      The supervisor sees no exit and does nothing.
    * Validated: RTO <= 6 s (requests time out during the pause and succeed again after it).
      Requests sent in the last 500 ms of the pause are answered when it ends; recovery is
      dated at those answers, never at their send time: RTO >= the pause.
    """
    orders = demo.orders("fsync")
    traffic = load(orders.url, users=USERS, rate=RATE, writes=0.3, request_timeout="500ms")
    traffic.wait_steady(successes=50)  # 50 successes: every user answered, the worker is serving
    with faults.pause(orders) as pause:
        await_evidence(traffic, "20 timeouts during the pause", failures=2 * USERS)
    traffic.wait_recovered(timeout="30s")
    record = pause.record
    assert record is not None and record.reverted_at is not None
    paused = record.reverted_at - record.injected_at
    rto = experiment.measure().rto
    assert rto is not None and rto >= paused - 0.05, f"nothing answered during the {paused:.2f}s pause, yet RTO {rto}"
    assert orders.restarts == 0
