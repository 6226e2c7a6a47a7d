"""The timeline: thread-safe appends, bounded columnar memory, the live recovery tracker."""

from __future__ import annotations

import sys
import threading
from array import array

import pytest

from pytest_resiliency.timeline import FaultRecord, Timeline

T0 = 1_700_000_000.0


def test_concurrent_appends_lose_nothing() -> None:
    tl = Timeline()
    per_thread, threads = 5_000, 8
    barrier = threading.Barrier(threads)

    def work(n: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            tl.add_operation(T0 + i * 1e-3, 0.001, i % 7 != 0, f"op{n}", "load")
            if i % 100 == 0:
                tl.add_write(f"{n}-{i}", T0, T0, "ok")

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    evidence = tl.snapshot()
    assert len(evidence) == per_thread * threads
    assert len(evidence.write_keys) == 50 * threads
    assert sum(evidence.op_ok) == threads * sum(1 for i in range(per_thread) if i % 7 != 0)
    assert {evidence.strings[i] for i in set(evidence.op_name)} == {f"op{n}" for n in range(threads)}


def test_storage_is_columnar_and_small() -> None:
    tl = Timeline()
    tl.add_operations((T0 + i * 1e-4, 0.001, True, "GET /", "load", None) for i in range(100_000))
    evidence = tl.snapshot()
    assert isinstance(evidence.op_start, array)
    per_op = sum(
        sys.getsizeof(col)
        for col in (
            evidence.op_start,
            evidence.op_latency,
            evidence.op_ok,
            evidence.op_name,
            evidence.op_source,
            evidence.op_error,
        )
    ) / len(evidence)
    assert per_op < 40  # a dict per operation would be ~400 bytes


def test_memory_is_bounded_and_drops_are_counted() -> None:
    tl = Timeline(max_operations=100)
    tl.add_operations((T0 + i, 0.001, True, "", "load", None) for i in range(150))
    tl.add_operation(T0 + 200, 0.001, False)
    evidence = tl.snapshot()
    assert len(evidence) == 100
    assert evidence.dropped == 51
    # The live tracker still saw the dropped failure, so a wait never returns early.
    assert tl.recovery_state().successes == 0


def test_interned_strings_are_capped() -> None:
    tl = Timeline()
    for i in range(12_000):
        tl.add_operation(T0, 0.0, False, "GET /", "load", error=f"error {i}")
    evidence = tl.snapshot()
    assert len(evidence.strings) <= 10_000
    assert evidence.strings[evidence.op_error[-1]] == "(other)"


def test_snapshot_is_isolated_from_later_appends() -> None:
    tl = Timeline()
    tl.add_operation(T0, 0.001, True)
    record = tl.fault_injected(FaultRecord("custom", "f", "f", {"a": 1}, None, T0 + 1))
    snap = tl.snapshot()
    tl.add_operation(T0 + 2, 0.001, True)
    tl.fault_reverted(record, T0 + 3)
    assert len(snap) == 1
    assert snap.faults[0].reverted_at is None
    assert tl.faults[0].reverted_at == T0 + 3


def test_bad_write_status_is_refused() -> None:
    with pytest.raises(ValueError, match="write status 'maybe' is not one of ok, fail, indeterminate"):
        Timeline().add_write("k", T0, None, "maybe")


def test_recovery_state_counts_successes_after_the_last_failure_or_injection() -> None:
    tl = Timeline()
    for i in range(10):
        tl.add_operation(T0 + i * 0.1, 0.001, True)
    assert tl.recovery_state().successes == 10
    tl.fault_injected(FaultRecord("custom", "f", "f", {}, None, T0 + 1.0))
    assert tl.recovery_state().successes == 0
    tl.add_operation(T0 + 1.1, 0.001, False)
    for i in range(5):
        tl.add_operation(T0 + 1.2 + i * 0.3, 0.001, True)
    state = tl.recovery_state()
    assert state.successes == 5
    assert state.first_success == pytest.approx(T0 + 1.201, abs=1e-6)  # completion, not send time
    assert state.failed
    assert state.holds(successes=5, window=1.0)
    assert not state.holds(successes=6, window=1.0)
    # A late-arriving failure after some of those successes moves the boundary.
    tl.add_operation(T0 + 1.7, 0.001, False)
    assert tl.recovery_state().successes == 3


def test_a_fault_without_failures_settles_after_one_window_without_waiting_for_successes() -> None:
    tl = Timeline()
    tl.fault_injected(FaultRecord("custom", "f", "f", {}, None, T0))
    tl.add_operation(T0 + 0.5, 0.001, True)
    assert not tl.recovery_state().settled(successes=5, window=1.0)  # too early to know
    tl.add_operation(T0 + 1.0, 0.001, True)
    state = tl.recovery_state()
    assert not state.failed and state.successes == 2
    assert state.settled(successes=5, window=1.0) and not state.holds(successes=5, window=1.0)
    tl.add_operation(T0 + 1.1, 0.001, False)
    assert not tl.recovery_state().settled(successes=5, window=1.0)


def test_a_success_answered_late_counts_only_if_sent_after_the_last_failure() -> None:
    tl = Timeline()
    tl.fault_injected(FaultRecord("custom", "f", "f", {}, None, T0))
    tl.add_operation(T0 + 0.5, 1.5, True)  # answered at +2.0 s
    tl.add_operation(T0 + 0.6, 0.001, False)  # refused after it was sent
    assert tl.recovery_state().successes == 0
    tl.add_operation(T0 + 0.7, 2.0, True)  # sent after the failure, answered at +2.7 s
    tl.add_operation(T0 + 0.8, 0.5, True)  # answered at +1.3 s: the first proof of recovery
    state = tl.recovery_state()
    assert state.successes == 2
    assert state.first_success == pytest.approx(T0 + 1.3, abs=1e-6)
