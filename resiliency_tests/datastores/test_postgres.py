"""PostgreSQL crash (postmaster SIGKILL) under open-loop INSERTs: what ``synchronous_commit`` costs.

``on``: a COMMIT is acknowledged after its WAL is flushed: nothing acknowledged is lost.
``off``: acknowledged from the WAL buffers in shared memory; the WAL writer writes them out
every ``wal_writer_delay`` (and as pages fill): the commits not yet written die with the
server. PostgreSQL documents the window as at most three times ``wal_writer_delay``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_resiliency import faults
from resiliency_tests.datastores.conftest import RATE, steady

if TYPE_CHECKING:
    from pytest_resiliency.experiment import Experiment

pytestmark = [pytest.mark.datastore, pytest.mark.local, pytest.mark.destructive]

WAL_WRITER_DELAY = 1.0


@pytest.mark.resiliency(rto="10s", rpo=0, recovery_window="300ms", disruption="software")
def test_synchronous_commit_on_loses_nothing(
    postgres_server: Any, writer: Any, experiment: Experiment, marks: Any
) -> None:
    """PostgreSQL 15, synchronous_commit=on · postmaster SIGKILL · 200 INSERT/s: RPO 0."""
    pg = postgres_server(synchronous_commit="on")
    writes = steady(writer(pg, rate=RATE))
    with faults.kill(pg):
        pass
    assert writes.wait_recovered(timeout="20s")
    writes.stop()
    ledger = experiment.verify_writes(pg.reader)
    marks(pg)
    assert ledger.acknowledged >= 100 and ledger.lost == 0


@pytest.mark.resiliency(rto="10s", rpo=f"{3 * WAL_WRITER_DELAY}s", recovery_window="300ms", disruption="software")
def test_synchronous_commit_off_loses_within_three_wal_writer_delays(
    postgres_server: Any, writer: Any, experiment: Experiment, marks: Any
) -> None:
    """PostgreSQL 15, synchronous_commit=off, wal_writer_delay=1s · SIGKILL: some acknowledged
    commits are lost, all within the documented window (RPO <= 3 x wal_writer_delay)."""
    pg = postgres_server(synchronous_commit="off", wal_writer_delay=f"{WAL_WRITER_DELAY}s")
    writes = steady(writer(pg, rate=RATE))
    with faults.kill(pg):
        pass
    assert writes.wait_recovered(timeout="20s")
    writes.stop()
    ledger = experiment.verify_writes(pg.reader)
    marks(pg)
    assert ledger.lost > 0, "asynchronous commit acknowledged writes that were still in the WAL buffers"
    assert ledger.rpo is not None and ledger.rpo <= 3 * WAL_WRITER_DELAY
