"""Host resource faults: CPU and memory pressure, a full disk.

The stress faults use stress-ng (a pure-Python stressor where it is missing) and end by
themselves at their maximum duration even if pytest dies. The disk fault fills a private
16 MiB tmpfs holding the orders data, never the machine's real disk.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_resiliency import faults
from resiliency_tests.conftest import BASELINE, Demo, health
from resiliency_tests.demo.store import durable_keys

if TYPE_CHECKING:
    from pytest_resiliency.experiment import Experiment
    from resiliency_tests.conftest import Load

pytestmark = [pytest.mark.local, pytest.mark.slow]


@pytest.mark.resiliency(p99="750ms", error_rate=0.01, disruption="hardware")
def test_cpu_stress_keeps_latency_within_budget(demo: Demo, load: Load, experiment: Experiment) -> None:
    """Host CPU saturated: the orders API keeps its latency budget.

    * Service: orders API, 1 instance, fsync.
    * Load: locust, 10 users, 60 requests/s, 30 % writes, about 10 s.
    * Fault: every core loaded at 100 % for 4 s (``faults.cpu_stress``).
    * Validated: p99 over the fault window <= 750 ms; error rate <= 1 %.
    """
    orders = demo.orders("fsync")
    traffic = load(orders.url, users=10, rate=60, writes=0.3, request_timeout="2s")
    traffic.wait_steady(successes=BASELINE)
    with faults.cpu_stress(max_duration="30s"):
        time.sleep(4)  # the fault's duration, not a synchronisation


@pytest.mark.resiliency(p99="750ms", error_rate=0.01, disruption="hardware")
def test_memory_stress_keeps_latency_within_budget(demo: Demo, load: Load, experiment: Experiment) -> None:
    """Host memory pressure: the orders API keeps its latency budget.

    * Service: orders API, 1 instance, fsync.
    * Load: locust, 10 users, 60 requests/s, 30 % writes, about 10 s.
    * Fault: 256 MiB held resident for 4 s (``faults.memory_stress``).
    * Validated: p99 over the fault window <= 750 ms; error rate <= 1 %.
    """
    orders = demo.orders("fsync")
    traffic = load(orders.url, users=10, rate=60, writes=0.3, request_timeout="2s")
    traffic.wait_steady(successes=BASELINE)
    with faults.memory_stress(256 << 20, max_duration="30s"):
        time.sleep(4)  # the fault's duration


@pytest.mark.destructive
@pytest.mark.resiliency(rto="6s", rpo=0, disruption="hardware")
def test_disk_full_fails_writes_cleanly_and_loses_nothing(
    demo: Demo, load: Load, experiment: Experiment, small_disk: Path
) -> None:
    """Disk full under the orders data: writes fail cleanly, recover when space returns.

    * Service: orders API, 1 instance, fsync, data on a private 16 MiB tmpfs.
    * Load: locust, 10 users, 60 requests/s, 30 % writes, about 10 s.
    * Fault: the filesystem filled to 100 % for 3 s (``faults.disk_fill``).
    * Validated: RTO <= 6 s; writes during the fault are refused (HTTP 507, never
      acknowledged) while reads go on; RPO 0: every acknowledged write is in the log on disk.
    """
    data = small_disk / "orders"
    orders = demo.orders("fsync", data_dir=data)
    traffic = load(orders.url, users=10, rate=60, writes=0.3, request_timeout="2s")
    traffic.wait_steady(successes=BASELINE)
    with faults.disk_fill(small_disk, percent=100):
        time.sleep(3)  # the fault's duration
    traffic.wait_recovered(timeout="30s")
    assert health(orders)["refused_writes"] > 0, "writes during the fault must have been refused"
    traffic.stop()
    ledger = experiment.verify_writes(lambda: durable_keys(data))  # what is on disk, not in memory
    assert ledger.failed > 0 and ledger.lost == 0
