"""Redis persistence modes against a SIGKILL: what each one keeps of the acknowledged writes.

A process crash keeps the OS page cache, so the fsync policy (``always`` / ``everysec``)
matters for power loss, not here: both AOF modes append before they reply and lose
nothing; RDB loses the writes since the last snapshot; no persistence loses everything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_resiliency import faults
from resiliency_tests.datastores.conftest import RATE, steady

if TYPE_CHECKING:
    from pytest_resiliency.experiment import Experiment

pytestmark = [pytest.mark.datastore, pytest.mark.local, pytest.mark.destructive]


@pytest.mark.resiliency(rto="5s", rpo=0, recovery_window="300ms", disruption="software")
def test_aof_always_loses_nothing(redis_server: Any, writer: Any, experiment: Experiment, marks: Any) -> None:
    """Redis, AOF fsync always · SIGKILL · 200 writes/s open loop: RPO 0, restart by the supervisor."""
    redis = redis_server(persistence="aof-always")
    writes = steady(writer(redis, rate=RATE))
    with faults.kill(redis):
        pass
    assert writes.wait_recovered(timeout="15s")
    writes.stop()
    ledger = experiment.verify_writes(redis.reader)
    marks(redis)
    assert ledger.acknowledged >= 100 and ledger.lost == 0


@pytest.mark.resiliency(rto="5s", rpo=0, recovery_window="300ms", disruption="software")
def test_aof_everysec_survives_a_process_crash(
    load: Any, redis_server: Any, experiment: Experiment, marks: Any
) -> None:
    """Redis, AOF fsync every second · SIGKILL · locust users (custom client) out of process: RPO 0.

    The writes come from locust workers running redis-py (``load(..., client="redis")``), so
    the same experiment scales with ``workers=N`` like HTTP load.
    """
    redis = redis_server(persistence="aof-everysec")
    traffic = load(redis.url, client="redis", users=4, rate=RATE)
    traffic.wait_steady(successes=100)
    with faults.kill(redis):
        pass
    assert traffic.wait_recovered(timeout="15s")
    traffic.stop()
    ledger = experiment.verify_writes(redis.reader)
    marks(redis)
    assert ledger.acknowledged >= 100 and ledger.lost == 0


@pytest.mark.resiliency(rto="5s", rpo="2500ms", recovery_window="300ms", disruption="software")
def test_rdb_snapshots_lose_at_most_one_interval(
    redis_server: Any, writer: Any, experiment: Experiment, marks: Any
) -> None:
    """Redis, RDB snapshot every second · SIGKILL 20 writes after a snapshot: those writes are lost.

    Budget: RPO within one interval plus the snapshot's own duration (2.5 s).
    """
    redis = redis_server(persistence="rdb", save=1)
    writes = steady(writer(redis, rate=RATE))
    redis.process.wait_for_log("DB saved on disk", timeout="10s")
    writes.wait_steady(successes=writes.outcomes["ok"] + 20)  # 20 acknowledged since the snapshot
    with faults.kill(redis):
        pass
    assert writes.wait_recovered(timeout="15s")
    writes.stop()
    ledger = experiment.verify_writes(redis.reader)
    marks(redis)
    assert ledger.lost >= 20 and ledger.rpo is not None and ledger.rpo <= 2.5  # at least those since the snapshot


@pytest.mark.xfail(strict=True, reason="deliberate breach: Redis without persistence cannot meet rpo=0")
@pytest.mark.resiliency(rto="5s", rpo=0, recovery_window="300ms", disruption="software")
def test_without_persistence_every_acknowledged_write_is_lost(
    redis_server: Any, writer: Any, experiment: Experiment, marks: Any
) -> None:
    """Redis, no persistence · SIGKILL: every write acknowledged before the crash is gone (RPO breach)."""
    redis = redis_server(persistence="none")
    writes = steady(writer(redis, rate=RATE))
    with faults.kill(redis):
        pass
    assert writes.wait_recovered(timeout="15s")
    writes.stop()
    ledger = experiment.verify_writes(redis.reader)
    marks(redis)
    t_inject = experiment.last_injection
    assert t_inject is not None
    before = [key for key, ack in writes.acks if ack < t_inject]
    assert before and ledger.lost == len(before)  # all of them, and nothing acknowledged after the restart
