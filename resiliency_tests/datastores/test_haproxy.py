"""HAProxy in front of two backends, one SIGKILLed: health checks decide the RTO, redispatch hides it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_resiliency import faults
from resiliency_tests.conftest import await_evidence
from resiliency_tests.datastores.conftest import recovery_proven_at

if TYPE_CHECKING:
    from pytest_resiliency.experiment import Experiment
    from resiliency_tests.conftest import Demo, Load

pytestmark = [pytest.mark.datastore, pytest.mark.local, pytest.mark.destructive]

INTER, FALL = 0.2, 3


@pytest.mark.resiliency(rto="2s", recovery_window="300ms", disruption="software")
def test_backend_killed_rto_is_check_interval_times_fall(
    demo: Demo, haproxy_server: Any, load: Load, experiment: Experiment, marks: Any
) -> None:
    """HAProxy 2.6, 2 backends, check every 200 ms, fall 3, no redispatch · SIGKILL of one backend
    (not restarted) · 200 req/s: requests routed to it fail until 3 failed checks mark it DOWN."""
    web1 = demo.orders("memory", name="web1", restart="never")
    web2 = demo.orders("memory", name="web2", restart="never")
    lb = haproxy_server([web1, web2], inter=f"{INTER}s", fall=FALL, redispatch=False)
    traffic = load(lb.url, users=4, rate=200, writes=0.3, request_timeout="2s")
    traffic.wait_steady(successes=100)
    with faults.kill(web1):
        pass
    assert traffic.wait_recovered(timeout="10s")
    traffic.stop()
    marks(lb)
    t_inject = experiment.last_injection
    recovered_by = recovery_proven_at(experiment)
    down = [e.at for e in lb.truth() if e.name == f"{lb.server(web1)} DOWN"]
    assert t_inject is not None and recovered_by is not None and down
    rto = recovered_by - t_inject  # the upper end of the bracket, what the verdict judges
    assert (FALL - 1) * INTER <= rto <= FALL * INTER + 0.3, rto
    assert abs(recovered_by - down[0]) <= 0.1, (rto, down[0] - t_inject)


@pytest.mark.resiliency(rto="1s", error_rate=0, recovery_window="300ms", disruption="software")
def test_backend_killed_with_redispatch_no_client_failure(
    demo: Demo, haproxy_server: Any, load: Load, experiment: Experiment, marks: Any
) -> None:
    """Same, with ``option redispatch`` and retries on connection failure: no client sees the death."""
    web1 = demo.orders("memory", name="web1", restart="never")
    web2 = demo.orders("memory", name="web2", restart="never")
    lb = haproxy_server([web1, web2], inter=f"{INTER}s", fall=FALL, redispatch=True)
    traffic = load(lb.url, users=4, rate=200, writes=0.3, request_timeout="2s")
    traffic.wait_steady(successes=100)
    with faults.kill(web1):
        assert web1.wait_for(lambda: web1.pid is None, 5)
    experiment.wait_recovered(timeout="3s")
    lb.process.wait_for_log(r"Server be/s1 is DOWN", timeout="5s")
    # 100 more requests once s1 is marked DOWN, all served by s2: the 200 requests asserted below
    # span the whole death (before it, while HAProxy still routed to the dead backend, after it)
    # however slowly a busy machine lets the load run.
    await_evidence(traffic, "100 requests after s1 was marked DOWN", successes=100)
    traffic.stop()
    marks(lb)
    stats = traffic.stats()
    assert stats["requests"] >= 200 and stats["failures"] == 0, stats
