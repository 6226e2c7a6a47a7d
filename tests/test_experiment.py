"""The experiment's evidence sources: open-loop monitors and the end-of-test wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from pytest_resiliency import faults
from pytest_resiliency.budget import Budget, Criteria
from pytest_resiliency.context import bind_experiment
from pytest_resiliency.experiment import Experiment


@pytest.fixture
def experiment() -> Iterator[Experiment]:
    """An experiment outside the plugin (faults used as context managers record into it)."""
    exp = Experiment("test_experiment.py::x", Budget(), Criteria(successes=5, window=0.3, timeout=60.0))
    bind_experiment(exp)
    yield exp
    bind_experiment(None)
    exp.finish(settle=False)


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for the evidence itself (polled), never for a fixed time."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.005)


def test_a_hung_probe_call_never_delays_the_next_and_fails_at_its_timeout(experiment: Experiment) -> None:
    release = threading.Event()
    calls = iter(range(10**6))

    def probe() -> None:
        if next(calls) == 0:  # the first call hangs until released
            release.wait(10)

    monitor = experiment.monitor(probe, every="20ms", concurrency=4, timeout="200ms", name="hang")
    timeline = experiment.timeline

    def evidence() -> tuple[list[float], list[float], list[int]]:
        ev = timeline.snapshot()
        return list(ev.op_start), list(ev.op_latency), list(ev.op_ok)

    wait_for(lambda: 0 in evidence()[2])  # the hung call became a failure at its timeout
    starts, latencies, oks = evidence()
    failure = oks.index(0)
    assert latencies[failure] == pytest.approx(0.2)
    assert timeline.snapshot().strings[timeline.snapshot().op_error[failure]].startswith("Timeout")
    # While the first call hung, the others went on being sent every 20 ms (open loop).
    during = [s for s, ok in zip(starts, oks, strict=True) if ok and starts[failure] < s < starts[failure] + 0.2]
    assert len(during) >= 5, during
    release.set()
    wait_for(lambda: len(evidence()[0]) > len(starts) + 3)
    monitor.stop()
    _, latencies, oks = evidence()
    assert oks.count(0) == 1  # the late answer of the hung call was dropped, not recorded as a success
    assert max(latencies) < 1.0
    assert monitor.source == "probe:hang"


def test_when_every_thread_is_hung_ticks_are_skipped_and_counted(experiment: Experiment) -> None:
    release = threading.Event()
    monitor = experiment.monitor(lambda: release.wait(10), every="10ms", concurrency=2, timeout="100ms")
    wait_for(lambda: len(experiment.timeline) == 2 and monitor.skipped >= 5)
    evidence = experiment.timeline.snapshot()
    assert list(evidence.op_ok) == [0, 0]
    release.set()
    monitor.stop()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"concurrency": 0}, "concurrency=0 must be a whole number >= 1"),
        ({"concurrency": True}, "concurrency=True must be a whole number >= 1"),
        ({"concurrency": "2"}, "concurrency='2' must be a whole number >= 1"),
        ({"timeout": "0s"}, "timeout='0s' must be a finite duration > 0"),
        ({"every": 0}, "every=0 must be a finite duration > 0"),
    ],
)
def test_bad_monitor_arguments_name_what_is_accepted(
    experiment: Experiment, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        experiment.monitor(lambda: None, **kwargs)  # type: ignore[arg-type]


class StoppedSource:
    """A load that has already been stopped: it can bring no more evidence."""

    running = False

    def stop(self) -> None:
        pass


def test_the_end_of_a_test_never_waits_for_a_stopped_source(experiment: Experiment) -> None:
    experiment.add_source(StoppedSource())
    with faults.custom(lambda: None, lambda: None, name="outage"):
        experiment.record_operation(time.time(), 0.001, False, source="load")
    began = time.monotonic()
    experiment.finish(settle=True)
    assert time.monotonic() - began < 2.0  # not the 60 s recovery timeout
    assert experiment.measure().status == "not recovered"


def test_a_fault_that_caused_no_failure_ends_its_wait_after_one_window(experiment: Experiment) -> None:
    experiment.monitor(lambda: None, every="10ms")
    with faults.custom(lambda: None, lambda: None, name="harmless"):
        pass
    began = time.monotonic()
    experiment.finish(settle=True)
    assert time.monotonic() - began < 2.0
    measurement = experiment.measure()
    assert measurement.status == "recovered" and measurement.rto == 0.0


def test_the_old_current_functions_are_the_context(experiment: Experiment) -> None:
    """experiment.current_experiment/set_current and aws.session's pair stay as aliases of the one context."""
    from pytest_resiliency import context
    from pytest_resiliency.experiment import current_experiment, set_current

    assert current_experiment() is context.experiment() is experiment
    other = Experiment("test_experiment.py::y")
    set_current(other)
    try:
        assert context.experiment() is other
    finally:
        set_current(experiment)


def test_evidence_sources_report_events_to_the_experiment(experiment: Experiment) -> None:
    """record_event is how the AWS session and target resolution reach the timeline (they never write into it)."""
    experiment.record_event("aws-call", "ec2.stop_instances", 12.5, params={"InstanceIds": ["i-1"]})
    (mark,) = experiment.timeline.snapshot().marks
    assert (mark.kind, mark.name, mark.at, mark.detail) == (
        "aws-call",
        "ec2.stop_instances",
        12.5,
        {"params": {"InstanceIds": ["i-1"]}},
    )


def test_the_wait_ends_only_once_calls_in_flight_at_the_decision_have_answered(experiment: Experiment) -> None:
    """A slow call sent into the fault that fails after the wait would have ended must be in the evidence.

    Without waiting for it, "no failure for a whole window" is decided while it is in flight;
    its failure then arrives after the monitors stop and the measurement says "not recovered".
    """
    hang = threading.Event()

    def probe() -> None:
        if hang.is_set():
            hang.clear()  # exactly one call: sent into the fault, answered 0.6 s later with an error
            time.sleep(0.6)
            raise ConnectionError("answered late with an error")

    experiment.monitor(probe, every="10ms", timeout="2s")
    wait_for(lambda: experiment.timeline.recovery_state().successes >= 5)
    with faults.custom(hang.set, lambda: None, name="slow"):
        pass
    assert experiment.wait_recovered(timeout="5s")
    experiment.finish(settle=False)  # stops the monitor at once: what the measurement gets is what came
    measurement = experiment.measure()
    assert measurement.episodes[0].failed == 1, "the late failure is part of the evidence"
    assert measurement.status == "recovered"
