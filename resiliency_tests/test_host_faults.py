"""Host resource faults: CPU and memory pressure, a full disk.

The stress faults use stress-ng (a pure-Python stressor where it is missing) and end by
themselves at their maximum duration even if pytest dies. The disk fault fills a private
16 MiB tmpfs holding the orders data, never the machine's real disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_resiliency import faults
from resiliency_tests.conftest import RATE, USERS, Demo, await_evidence, health
from resiliency_tests.demo.store import durable_keys

if TYPE_CHECKING:
    from pytest_resiliency.experiment import Experiment
    from resiliency_tests.conftest import Load

pytestmark = [pytest.mark.local, pytest.mark.slow]

# The pressure experiments judge a p99 over the fault window. A nearest-rank p99 over 100
# samples is their maximum; 200 successes under the fault leave the 2 slowest out, and a 1 %
# error budget allows 2 errors. The fault window ends one recovery window (300 ms, 60
# successes) after the revert, so three quarters of its requests ran under the pressure.
UNDER_PRESSURE = 200


@pytest.mark.resiliency(p99="750ms", error_rate=0.01, recovery_window="300ms", disruption="hardware")
def test_cpu_stress_keeps_latency_within_budget(demo: Demo, load: Load, experiment: Experiment) -> None:
    """Host CPU saturated: the orders API keeps its latency budget.

    * Service: orders API, 1 instance, fsync.
    * Load: locust, 10 users, 200 requests/s, 30 % writes, about 3 s.
    * Fault: every core loaded at 100 % (``faults.cpu_stress``), held until 200 requests
      have succeeded under it (about 1 s).
    * Validated: p99 over the fault window <= 750 ms; error rate <= 1 %.
    """
    orders = demo.orders("fsync")
    traffic = load(orders.url, users=USERS, rate=RATE, writes=0.3, request_timeout="2s")
    traffic.wait_steady(successes=100)  # baseline 100 successes (0.5 s): the p99 to compare with
    with faults.cpu_stress(max_duration="30s"):
        await_evidence(traffic, f"{UNDER_PRESSURE} requests under CPU stress", successes=UNDER_PRESSURE)


@pytest.mark.resiliency(p99="750ms", error_rate=0.01, recovery_window="300ms", disruption="hardware")
def test_memory_stress_keeps_latency_within_budget(demo: Demo, load: Load, experiment: Experiment) -> None:
    """Host memory pressure: the orders API keeps its latency budget.

    * Service: orders API, 1 instance, fsync.
    * Load: locust, 10 users, 200 requests/s, 30 % writes, about 3 s.
    * Fault: 256 MiB held resident (``faults.memory_stress``), held until 200 requests have
      succeeded under it (about 1 s).
    * Validated: p99 over the fault window <= 750 ms; error rate <= 1 %.
    """
    orders = demo.orders("fsync")
    traffic = load(orders.url, users=USERS, rate=RATE, writes=0.3, request_timeout="2s")
    traffic.wait_steady(successes=100)  # baseline 100 successes (0.5 s): the p99 to compare with
    with faults.memory_stress(256 << 20, max_duration="30s"):
        await_evidence(traffic, f"{UNDER_PRESSURE} requests under memory stress", successes=UNDER_PRESSURE)


@pytest.mark.destructive
# Recovery window 300 ms: 60 successes, some 18 of them writes, once space is back.
@pytest.mark.resiliency(rto="6s", rpo=0, recovery_window="300ms", disruption="hardware")
def test_disk_full_fails_writes_cleanly_and_loses_nothing(
    demo: Demo, load: Load, experiment: Experiment, small_disk: Path
) -> None:
    """Disk full under the orders data: writes fail cleanly, recover when space returns.

    * Service: orders API, 1 instance, fsync, data on a private 16 MiB tmpfs.
    * Load: locust, 10 users, 200 requests/s, 30 % writes, about 3 s.
    * Fault: the filesystem filled to 100 % (``faults.disk_fill``), held until 30 writes
      have been refused and 100 reads served (the disk is full, the API is up).
    * Validated: RTO <= 6 s; writes during the fault are refused (HTTP 507, never
      acknowledged) while reads go on; RPO 0: every acknowledged write is in the log on disk.
    """
    data = small_disk / "orders"
    orders = demo.orders("fsync", data_dir=data)
    traffic = load(orders.url, users=USERS, rate=RATE, writes=0.3, request_timeout="2s")
    # Baseline 100 successes (0.5 s): about 30 writes acknowledged and fsynced before the fill,
    # which must still be in the log on disk afterwards.
    traffic.wait_steady(successes=100)
    with faults.disk_fill(small_disk, percent=100):
        await_evidence(traffic, "30 writes refused on the full disk", failures=30, successes=100)
    traffic.wait_recovered(timeout="30s")
    assert health(orders)["refused_writes"] > 0, "writes during the fault must have been refused"
    traffic.stop()
    ledger = experiment.verify_writes(lambda: durable_keys(data))  # what is on disk, not in memory
    assert ledger.failed > 0 and ledger.lost == 0
