"""A 3-member etcd cluster loses its leader: no acknowledged write lost, RTO ≈ the election."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_resiliency import faults
from resiliency_tests.datastores.conftest import recovery_proven_at, steady

if TYPE_CHECKING:
    from pytest_resiliency.experiment import Experiment

pytestmark = [pytest.mark.datastore, pytest.mark.local, pytest.mark.destructive]

ELECTION = 0.5


# Recovery window 500 ms: 50 consecutive puts at 100 puts/s after the election.
@pytest.mark.resiliency(rto="3s", rpo=0, recovery_window="500ms", disruption="software")
def test_leader_killed_loses_nothing_and_recovers_in_an_election(
    etcd_cluster: Any, writer: Any, experiment: Experiment, marks: Any
) -> None:
    """etcd 3.4 x 3, election timeout 500 ms · SIGKILL of the leader · 100 puts/s through the
    JSON gateway (failing over between members): RPO 0, RTO within 400 ms of the new leader's
    own "elected leader" log line."""
    cluster = etcd_cluster(nodes=3, heartbeat="50ms", election=f"{ELECTION}s", restart_delay="5s")
    # Writes blocked on the dead leader wait for the client timeout (1 s): rate x timeout = 100
    # threads would all be blocked; 128 keep the open loop sending new writes through the election.
    writes = steady(writer(cluster, rate=100, concurrency=128))
    leader = cluster.leader
    with faults.kill(leader):
        pass
    assert writes.wait_recovered(timeout="15s")
    writes.stop()
    ledger = experiment.verify_writes(cluster.reader)
    marks(cluster)
    t_inject = experiment.last_injection
    assert t_inject is not None
    elected = [e.at for e in cluster.truth() if e.at > t_inject]
    recovered_by = recovery_proven_at(experiment)
    assert ledger.acknowledged >= 100 and ledger.lost == 0
    assert elected and recovered_by is not None
    # A write succeeds only once a new leader is elected: the first proof of recovery (a
    # success's completion) comes after the election, by at most a few writes' latency.
    assert -0.05 <= recovered_by - min(elected) <= 0.4, (recovered_by - t_inject, min(elected) - t_inject)
