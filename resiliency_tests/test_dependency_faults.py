"""Faults on the orders API's dependency (the ledger), injected through the fault proxy.

The orders API posts every order to the ledger before acknowledging it; the ledger is
reached through a userspace TCP fault proxy (``proxy`` fixture), so latency and outages
are real on the wire while reads, which do not need the ledger, keep working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_resiliency import faults, probes
from resiliency_tests.conftest import RATE, USERS, Demo, await_evidence, health

if TYPE_CHECKING:
    from pytest_resiliency.experiment import Experiment
    from pytest_resiliency.faults.network import Proxy
    from pytest_resiliency.targets.service import Service
    from resiliency_tests.conftest import Load, ProxyFactory

pytestmark = [pytest.mark.local, pytest.mark.network, pytest.mark.slow]


def _orders_behind_proxy(demo: Demo, proxy: ProxyFactory) -> tuple[Service, Proxy]:
    ledger = demo.ledger()
    link = proxy(ledger, name="ledger-link")
    orders = demo.orders("fsync", ledger=link.address, ledger_timeout="1s")
    return orders, link


# Recovery window 300 ms (60 successes at 200 req/s): the fault window, over which the p99 is
# judged, ends that long after the revert, so its fast requests dilute the slow ones little.
@pytest.mark.resiliency(p99="600ms", error_rate=0.01, recovery_window="300ms", disruption="software")
def test_dependency_latency_keeps_p99_within_budget(
    demo: Demo, proxy: ProxyFactory, load: Load, experiment: Experiment
) -> None:
    """Ledger latency +200 ms: the orders API stays within its p99 budget.

    * Service: orders API, 1 instance, fsync; ledger, 1 instance, behind the fault proxy.
    * Load: locust, 20 users, 200 requests/s, 30 % writes, about 3 s (each user waits for
      its slow writes: 20 users keep the rate above 150 requests/s under the fault).
    * Fault: +200 ms latency on every ledger response (proxy ``latency`` toxic), held until
      200 requests have succeeded under it (about 1.3 s).
    * Validated: p99 over the fault window <= 600 ms; error rate <= 1 % (slow, not broken).
    """
    orders, link = _orders_behind_proxy(demo, proxy)
    traffic = load(orders.url, users=2 * USERS, rate=RATE, writes=0.3, request_timeout="2s")
    # Baseline 100 successes (0.5 s): the baseline p99 the report compares the fault window with.
    traffic.wait_steady(successes=100)
    with faults.latency(link, "200ms"):
        # 200 successes under the fault, about 60 of them writes that paid the 200 ms: a
        # nearest-rank p99 over 100 samples is their maximum, over 200 it leaves the 2 slowest
        # out; a 1 % error budget allows 2 errors.
        await_evidence(traffic, "200 requests under the latency", successes=200)
    window = experiment.measure().fault_window
    assert window.p99 is not None and window.p99 >= 0.2, "the writes must have paid the 200 ms"


@pytest.mark.xfail(strict=True, reason="deliberate breach: a 100 ms p99 cannot absorb +200 ms on the dependency")
@pytest.mark.resiliency(p99="100ms", recovery_window="300ms", disruption="software")  # as above
def test_dependency_latency_breaches_tight_p99(
    demo: Demo, proxy: ProxyFactory, load: Load, experiment: Experiment
) -> None:
    """Ledger latency +200 ms against a p99 budget of 100 ms: what a latency breach looks like.

    * Service: orders API, 1 instance; ledger behind the fault proxy.
    * Load: locust, 10 users, 200 requests/s, 30 % writes, about 2 s.
    * Fault: +200 ms latency on the ledger, held until 100 requests have succeeded under it.
    * Validated: p99 <= 100 ms is breached, so this test is ``xfail(strict=True)``.
    """
    orders, link = _orders_behind_proxy(demo, proxy)
    traffic = load(orders.url, users=USERS, rate=RATE, writes=0.3, request_timeout="2s")
    traffic.wait_steady(successes=50)  # baseline 50 successes: the breach, not the baseline, is the point
    with faults.latency(link, "200ms"):
        # 100 successes under the fault, about 30 of them slow writes: far more than the 1 % a
        # p99 may hide, even diluted by the fast requests of the recovery window after it.
        await_evidence(traffic, "100 requests under the latency", successes=100)


# Recovery window 300 ms: 60 successes, some 18 of them writes that reached the ledger again.
@pytest.mark.resiliency(rto="5s", recovery_window="300ms", disruption="software")
def test_dependency_down_degrades_and_recovers(
    demo: Demo, proxy: ProxyFactory, load: Load, experiment: Experiment
) -> None:
    """Ledger down (connections refused): writes fail fast, reads go on, recovery within 5 s.

    * Service: orders API, 1 instance, fsync; ledger behind the fault proxy.
    * Load: locust, 10 users, 200 requests/s, 30 % writes, about 3 s; plus a health probe
      of the orders API every 50 ms.
    * Fault: the proxy refuses connections and drops open ones (``down`` toxic), held until
      the load has seen 30 refused writes and 100 successful requests (about 0.5 s).
    * Validated: RTO <= 5 s; the API degrades instead of failing: its health endpoint never
      fails and no write is acknowledged without reaching the ledger (RPO 0 on read-back).
    """
    orders, link = _orders_behind_proxy(demo, proxy)
    experiment.monitor(probes.http(f"{orders.url}/health"), every="50ms", name="orders-health")
    traffic = load(orders.url, users=USERS, rate=RATE, writes=0.3, request_timeout="2s")
    traffic.wait_steady(successes=50)  # baseline 50 successes (0.25 s): reads and writes both served
    with faults.down(link):
        # 30 refused writes show the outage; 100 successes (the reads) show that the API itself
        # serves on; the health probe sees about 10 of its checks inside the outage.
        await_evidence(traffic, "30 refused writes and 100 served reads", failures=30, successes=100)
    traffic.wait_recovered(timeout="30s")
    assert health(orders)["ledger_failures"] > 0, "writes during the outage must have been refused"
    probe = experiment.measure(source="probe:orders-health")
    window = probe.fault_window
    assert window.operations >= 10 and window.failed == 0, f"the API itself must stay up: {window}"
    traffic.stop()  # read back once no write is in flight any more
    ledger = experiment.verify_writes(traffic.read_back)
    assert ledger.failed > 0 and ledger.lost == 0
