"""The open-loop writer: schedule independent of answers, true send times, ledger classification."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pytest

from pytest_resiliency.experiment import Experiment
from pytest_resiliency.load import classifiers
from pytest_resiliency.load.writer import Writer, WriterError


def _ops(experiment: Experiment) -> list[tuple[float, float, bool, str]]:
    ev = experiment.timeline.snapshot()
    return [
        (s, lat, bool(ok), ev.strings[src])
        for s, lat, ok, src in zip(ev.op_start, ev.op_latency, ev.op_ok, ev.op_source, strict=True)
    ]


def test_open_loop_keeps_its_schedule_while_writes_are_slow() -> None:
    experiment = Experiment("t")
    stored: list[str] = []

    def slow_put(key: str) -> None:
        time.sleep(0.05)  # the system under test is slow: the schedule must not wait for it
        stored.append(key)

    writer = Writer(experiment, slow_put, rate=100, concurrency=10, name="slow", duration="1s").start()
    writer.wait_steady(successes=60, timeout="5s")
    writer.stop()
    ops = _ops(experiment)
    starts = sorted(s for s, *_ in ops)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(ops) >= 60
    assert sorted(gaps)[len(gaps) // 2] == pytest.approx(0.01, abs=0.004)  # 100/s, not 1/0.05 per thread
    assert all(lat >= 0.045 for _, lat, _, _ in ops)  # latency is completion - true send time
    assert {src for *_, src in ops} == {"writer:slow"}
    assert writer.acknowledged == [k for k, _ in writer.acks] and set(writer.acknowledged) == set(stored)


def test_failed_writes_are_classified_onto_the_ledger() -> None:
    experiment = Experiment("t")
    outcomes = iter([None, ConnectionRefusedError(111, "Connection refused"), TimeoutError("timed out")] * 50)

    def put(key: str) -> None:
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome

    writer = Writer(experiment, put, rate=300, concurrency=1, duration="0.3s").start()
    writer.wait_steady(successes=20, timeout="5s")
    writer.stop()
    ledger = experiment.verify_writes(lambda keys: [])
    assert ledger.acknowledged == writer.outcomes["ok"] >= 20
    assert ledger.failed == writer.outcomes["fail"] > 0
    assert ledger.indeterminate == writer.outcomes["indeterminate"] > 0
    assert ledger.lost == ledger.acknowledged  # the reader found nothing
    assert writer.stats()["errors"] == {"ConnectionRefusedError": ledger.failed, "Timeout": ledger.indeterminate}


def test_a_full_backlog_skips_due_writes_and_never_records_unsent_ones() -> None:
    experiment = Experiment("t")
    release = threading.Event()

    def stuck(key: str) -> None:
        release.wait(5)

    writer = Writer(experiment, stuck, rate=200, concurrency=1, max_backlog=2).start()
    deadline = time.monotonic() + 5
    while writer.stats()["skipped"] < 10 and time.monotonic() < deadline:
        time.sleep(0.01)  # nothing else to await: skips are counted by the scheduler
    release.set()
    writer.stop()
    assert writer.skipped >= 10
    assert len(experiment.timeline.snapshot().write_keys) == sum(writer.outcomes.values()) <= 4


def test_a_target_with_put_and_classify_brings_its_classifier() -> None:
    class Store:
        name = "store"

        def put(self, key: str) -> None:
            raise RuntimeError("anything")

        classify = staticmethod(lambda exc: "fail")

    experiment = Experiment("t")
    writer = Writer(experiment, Store(), rate=100, duration="0.1s").start()
    assert writer.join(timeout="5s")
    assert writer.source == "writer:store" and writer.outcomes["fail"] > 0 and not writer.outcomes["indeterminate"]


def test_a_classifier_answering_nonsense_never_invents_a_loss() -> None:
    experiment = Experiment("t")

    def put(key: str) -> None:
        raise RuntimeError("x")

    writer = Writer(experiment, put, rate=100, duration="0.1s", classify=lambda exc: "lost?").start()
    assert writer.join(timeout="5s")
    assert writer.outcomes["indeterminate"] > 0 and not writer.outcomes["fail"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rate": 0}, "rate=0 must be a number of writes per second > 0"),
        ({"concurrency": 0}, "concurrency=0 must be a whole number >= 1"),
        ({"classify": "mongo"}, "classify='mongo' is not a known classifier; accepted: default, redis, psycopg, etcd"),
        ({"duration": "soon"}, "duration"),
        ({"max_backlog": 0}, "max_backlog=0 must be a whole number >= 1"),
    ],
)
def test_bad_writer_arguments_are_clear_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(WriterError, match=message.replace("(", r"\(")):
        Writer(Experiment("t"), lambda key: None, **options)


def test_a_target_without_put_is_refused() -> None:
    with pytest.raises(WriterError, match=r"neither a put\(key\) callable nor an object with \.put\(key\)"):
        Writer(Experiment("t"), object())


def test_not_steady_names_what_it_saw() -> None:
    def put(key: str) -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    writer = Writer(Experiment("t"), put, rate=200).start()
    try:
        steady = r"did not become steady within 0\.3s: 0 acknowledged \(needed 5\), errors: "
        with pytest.raises(WriterError, match=steady):
            writer.wait_steady(timeout="300ms")
    finally:
        writer.stop()


def test_writer_fixture_stops_its_writers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import threading
        def test_w(writer):
            w = writer(lambda key: None, rate=100)
            w.wait_steady(successes=5)
            assert w.running

        def test_after():
            assert not [t for t in threading.enumerate() if t.name.startswith("resiliency-writer")]
        """
    )
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_not_sent_is_fail_for_every_classifier() -> None:
    for name in ("default", "redis", "psycopg", "etcd"):
        assert classifiers.get(name)(classifiers.NotSent("pool exhausted")) == "fail", name


def test_recovery_is_settled_only_after_writes_sent_before_it_have_answered() -> None:
    """A write sent after recovery seemed proven, still waiting, may yet fail (a dead member
    of a cluster): the writer's wait covers it, so stopping right after never leaves the
    measurement "not recovered"."""
    from pytest_resiliency import faults
    from pytest_resiliency.budget import Budget, Criteria
    from pytest_resiliency.experiment import set_current

    experiment = Experiment("t", Budget(), Criteria(successes=3, window=0.2))
    down, hang_next, hung, release = threading.Event(), threading.Event(), threading.Event(), threading.Event()
    hung_at: list[float] = []

    def put(key: str) -> None:
        if down.is_set():
            raise ConnectionRefusedError("down")
        if hang_next.is_set() and not hung.is_set():
            hung_at.append(time.time())
            hung.set()
            release.wait(5)
            raise TimeoutError("no answer")

    writer = Writer(experiment, put, rate=100, concurrency=8, name="w", classify="default").start()
    set_current(experiment)
    try:
        writer.wait_steady(successes=5)
        with faults.custom(down.set, down.clear, name="outage"):
            pass
        assert experiment.wait_recovered(timeout="5s")
        hang_next.set()
        assert hung.wait(5)
        assert experiment.wait_recovered(timeout="5s")  # the experiment alone says recovered...
        threading.Timer(0.3, release.set).start()
        assert writer.wait_recovered(timeout="10s")  # ...the writer waits for the hung write
        assert release.is_set()
        writer.stop()
        measurement = experiment.measure()
        assert measurement.status == "recovered"
        (episode,) = measurement.episodes
        assert episode.recovery_from is not None and episode.recovery_from >= hung_at[0] - 0.01  # its send time
    finally:
        set_current(None)
        release.set()
        writer.stop()
