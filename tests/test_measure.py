"""Measurement definitions on synthetic timelines: every edge named in the README contract."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_resiliency.budget import Budget, Criteria
from pytest_resiliency.measure import measure, percentile
from pytest_resiliency.timeline import FaultRecord, Timeline
from pytest_resiliency.verdict import judge

T0 = 1_700_000_000.0
CRITERIA = Criteria(successes=5, window=1.0, timeout=60.0)


def fault(at: float, until: float | None = None, name: str = "f") -> FaultRecord:
    return FaultRecord("custom", name, name, {}, None, T0 + at, None if until is None else T0 + until)


def grid(start: float, stop: float, step: float) -> list[float]:
    """Evenly spaced times without float drift (start + i*step, rounded to the microsecond)."""
    count = round((stop - start) / step)
    return [round(start + i * step, 6) for i in range(count)]


def ops(tl: Timeline, start: float, stop: float, step: float, ok: bool, latency: float = 0.001) -> None:
    for t in grid(start, stop, step):
        tl.add_operation(T0 + t, latency, ok, "GET /", "load")


def scenario(outage: tuple[float, float] | None, end: float = 6.0, step: float = 0.01) -> Timeline:
    """Evidence every ``step`` s from 0 to ``end``; failing during ``outage``; fault injected at 1 s."""
    tl = Timeline()
    tl.fault_injected(fault(1.0, 1.0))
    for t in grid(0.0, end, step):
        failing = outage is not None and outage[0] <= t < outage[1]
        tl.add_operation(T0 + t, 0.002, not failing, "GET /", "load")
    return tl


def test_rto_is_the_completion_of_the_first_success_after_the_last_failure() -> None:
    m = measure(scenario((1.0, 2.5)).snapshot(), CRITERIA)
    (e,) = m.episodes
    assert m.status == "recovered"
    # last failure sent at +2.49 s; first success sent at +2.50 s, answered 2 ms later
    assert e.recovery_from == pytest.approx(T0 + 2.49, abs=1e-6)
    assert e.t_recovered == pytest.approx(T0 + 2.502, abs=1e-6)
    assert m.rto == pytest.approx(1.502, abs=1e-6)
    assert m.uncertainty == e.uncertainty == pytest.approx(0.012, abs=1e-6)
    assert e.detection_delay == pytest.approx(0.0, abs=1e-6)
    assert e.outage == pytest.approx(1.502, abs=1e-6)
    assert e.failed == 150
    assert e.longest_gap == pytest.approx(1.51, abs=1e-6)


def test_no_failure_gives_rto_zero() -> None:
    m = measure(scenario(None).snapshot(), CRITERIA)
    assert m.status == "recovered"
    assert m.rto == 0.0
    assert m.uncertainty == 0.0
    assert m.episodes[0].t_first_fail is None
    assert m.episodes[0].recovery_from is None


def test_no_evidence_is_not_rto_zero() -> None:
    tl = Timeline()
    tl.fault_injected(fault(1.0, 2.0))
    m = measure(tl.snapshot(), CRITERIA)
    assert m.status == "no evidence"
    assert m.rto is None
    verdict = judge(m, Budget(rto=5.0))
    assert not verdict.passed
    assert "no evidence" in verdict.line
    assert "RTO 0" not in verdict.line


def test_evidence_only_before_the_fault_is_no_evidence() -> None:
    tl = Timeline()
    ops(tl, 0.0, 1.0, 0.01, True)
    tl.fault_injected(fault(1.0, 2.0))
    assert measure(tl.snapshot(), CRITERIA).status == "no evidence"


def test_never_recovered() -> None:
    m = measure(scenario((1.0, 99.0)).snapshot(), CRITERIA)
    assert m.status == "not recovered"
    assert m.rto is None
    line = judge(m, Budget(rto=5.0)).line
    assert line.startswith("RTO not recovered within 60.00s > budget 5.00s")
    assert "first failure +0s" in line


def test_recovery_needs_the_window_to_hold_until_the_end_of_observation() -> None:
    # Successes after the last failure, but fewer than 1 s of them: not yet recovered.
    m = measure(scenario((1.0, 5.5)).snapshot(), CRITERIA)
    assert m.status == "not recovered"


def test_recovery_needs_enough_consecutive_successes() -> None:
    tl = Timeline()
    tl.fault_injected(fault(1.0, 1.0))
    ops(tl, 1.0, 2.0, 0.01, False)
    ops(tl, 2.0, 4.0, 0.5, True)  # 4 successes spanning 1.5 s
    assert measure(tl.snapshot(), CRITERIA).status == "not recovered"
    assert measure(tl.snapshot(), Criteria(successes=4, window=1.0)).rto == pytest.approx(1.001, abs=1e-6)


def test_flapping_recovery_counts_from_the_last_failure() -> None:
    tl = Timeline()
    tl.fault_injected(fault(1.0, 1.0))
    ops(tl, 0.0, 1.0, 0.01, True)
    ops(tl, 1.0, 2.0, 0.01, False)
    ops(tl, 2.0, 2.3, 0.01, True)  # flaps back...
    ops(tl, 2.3, 2.6, 0.01, False)  # ...and fails again
    ops(tl, 2.6, 5.0, 0.01, True)
    m = measure(tl.snapshot(), CRITERIA)
    assert m.rto == pytest.approx(1.601, abs=1e-6)
    assert m.episodes[0].failed == 130


def test_failures_before_t_inject_are_baseline_not_outage() -> None:
    tl = Timeline()
    ops(tl, 0.0, 0.5, 0.01, False)
    ops(tl, 0.5, 1.0, 0.01, True)
    tl.fault_injected(fault(1.0, 1.0))
    ops(tl, 1.0, 1.2, 0.01, False)
    ops(tl, 1.2, 4.0, 0.01, True)
    m = measure(tl.snapshot(), CRITERIA)
    assert m.rto == pytest.approx(0.201, abs=1e-6)
    assert m.baseline.failed == 50
    assert m.baseline.error_rate == pytest.approx(0.5)
    assert m.episodes[0].failed == 20


def test_out_of_order_arrival_gives_the_same_measurement() -> None:
    ordered = scenario((1.2, 2.0))
    evidence = ordered.snapshot()
    rows = list(zip(evidence.op_start, evidence.op_latency, evidence.op_ok, strict=True))
    random.Random(7).shuffle(rows)
    shuffled = Timeline()
    shuffled.fault_injected(fault(1.0, 1.0))
    for start, latency, ok in rows:
        shuffled.add_operation(start, latency, bool(ok), "GET /", "load")
    a, b = measure(evidence, CRITERIA), measure(shuffled.snapshot(), CRITERIA)
    assert a.as_dict() == b.as_dict()


def test_equal_timestamps_failure_and_success_at_the_same_instant() -> None:
    tl = Timeline()
    tl.fault_injected(fault(1.0, 1.0))
    ops(tl, 1.0, 2.0, 0.01, False)
    tl.add_operation(T0 + 2.0, 0.001, True, "GET /", "load")
    tl.add_operation(T0 + 2.0, 0.001, False, "GET /", "load")  # same instant: not after the failure
    ops(tl, 2.01, 4.0, 0.01, True)
    m = measure(tl.snapshot(), CRITERIA)
    assert m.rto == pytest.approx(1.011, abs=1e-6)


def test_operation_at_exactly_t_inject_belongs_to_the_fault() -> None:
    tl = Timeline()
    tl.fault_injected(fault(1.0, 1.0))
    tl.add_operation(T0 + 1.0, 0.001, False, "GET /", "load")
    ops(tl, 1.01, 3.0, 0.01, True)
    m = measure(tl.snapshot(), CRITERIA)
    assert m.episodes[0].failed == 1
    assert m.episodes[0].detection_delay == 0.0


def test_several_faults_make_several_episodes_and_the_worst_decides() -> None:
    tl = Timeline()
    tl.fault_injected(fault(1.0, 1.1, "first"))
    tl.fault_injected(fault(5.0, 5.1, "second"))
    ops(tl, 0.0, 1.0, 0.01, True)
    ops(tl, 1.0, 1.3, 0.01, False)  # first: 0.3 s
    ops(tl, 1.3, 5.0, 0.01, True)
    ops(tl, 5.0, 5.8, 0.01, False)  # second: 0.8 s
    ops(tl, 5.8, 8.0, 0.01, True)
    m = measure(tl.snapshot(), CRITERIA)
    first, second = m.episodes
    assert first.faults == ("first",)
    assert first.rto == pytest.approx(0.301, abs=1e-6)
    assert second.rto == pytest.approx(0.801, abs=1e-6)
    assert m.rto == pytest.approx(0.801, abs=1e-6)
    assert m.worst is second


def test_overlapping_faults_form_one_episode() -> None:
    tl = Timeline()
    tl.fault_injected(fault(1.0, 3.0, "a"))
    tl.fault_injected(fault(2.0, 2.5, "b"))
    ops(tl, 1.0, 3.0, 0.01, False)
    ops(tl, 3.0, 5.0, 0.01, True)
    m = measure(tl.snapshot(), CRITERIA)
    assert len(m.episodes) == 1
    assert m.episodes[0].faults == ("a", "b")
    assert m.rto == pytest.approx(2.001, abs=1e-6)


def test_an_episode_that_never_recovers_before_the_next_fault() -> None:
    tl = Timeline()
    tl.fault_injected(fault(1.0, 1.1, "first"))
    tl.fault_injected(fault(3.0, 3.1, "second"))
    ops(tl, 1.0, 3.0, 0.01, False)
    ops(tl, 3.0, 6.0, 0.01, True)
    m = measure(tl.snapshot(), CRITERIA)
    assert [e.status for e in m.episodes] == ["not recovered", "recovered"]
    assert m.status == "not recovered"
    assert m.rto is None


def test_recovery_after_the_deadline_is_not_recovered() -> None:
    m = measure(scenario((1.0, 3.0), end=6.0).snapshot(), Criteria(timeout=1.5))
    assert m.status == "not recovered"
    assert "not recovered within 1.50s" in judge(m, Budget(rto=1.0)).line


def test_no_fault_is_a_breach_of_an_rto_budget_not_a_pass() -> None:
    tl = Timeline()
    ops(tl, 0.0, 2.0, 0.01, True)
    m = measure(tl.snapshot(), CRITERIA)
    assert m.status == "no fault"
    assert judge(m, Budget(rto=1.0)).line == "RTO not measured: no fault was injected (budget 1.00s)"
    assert judge(m, Budget()).passed


def test_rto_verdict_line_names_measured_budget_and_evidence() -> None:
    m = measure(scenario((1.03, 8.44), end=10.0).snapshot(), CRITERIA)
    verdict = judge(m, Budget(rto=5.0))
    assert verdict.line == (
        "RTO 7.44s (±12ms) > budget 5.00s "
        "(first failure +30ms, last seen down +7.43s, recovered by +7.44s, 741 failed operations)"
    )
    assert verdict.breaches[0].measured == pytest.approx(7.442, abs=1e-6)
    assert verdict.notes == ()


def test_latency_and_error_rate_over_baseline_and_fault_window() -> None:
    tl = Timeline()
    ops(tl, 0.0, 1.0, 0.01, True, latency=0.010)
    tl.fault_injected(fault(1.0, 2.0))
    ops(tl, 1.0, 2.0, 0.01, True, latency=0.250)  # slow during the fault
    ops(tl, 2.0, 2.1, 0.01, False)
    ops(tl, 2.1, 6.0, 0.01, True, latency=0.010)
    m = measure(tl.snapshot(), CRITERIA)
    assert m.baseline.p99 == pytest.approx(0.010)
    assert m.baseline.error_rate == 0.0
    # Fault window: t_inject .. max(revert, recovery) + recovery window = 1.0 .. 2.11 + 1.0
    assert m.fault_window.operations == 211
    assert m.fault_window.failed == 10
    assert m.fault_window.p99 == pytest.approx(0.250)
    verdict = judge(m, Budget(p99=0.1, error_rate=0.01))
    assert [b.nfr for b in verdict.breaches] == ["error_rate", "p99"]
    assert "p99 250ms > budget 100ms" in verdict.line
    assert "error rate 4.7% > budget 1.0% (10 of 211 operations failed in the fault window)" in verdict.line


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 0.5) == 50.0
    assert percentile([3.0], 0.99) == 3.0
    assert percentile([], 0.99) is None


def test_source_restricts_the_evidence() -> None:
    tl = scenario((1.0, 2.0))
    ops(tl, 1.0, 4.0, 0.05, True)  # a probe that never saw the outage
    for i in range(60):
        tl.add_operation(T0 + 1.0 + i * 0.05, 0.001, True, "health", "probe:health")
    assert measure(tl.snapshot(), CRITERIA, source="probe:health").rto == 0.0
    assert measure(tl.snapshot(), CRITERIA, source="load").rto == pytest.approx(1.001, abs=1e-6)
    with pytest.raises(ValueError, match="no evidence source 'nope'; the timeline has: load, probe:health"):
        measure(tl.snapshot(), CRITERIA, source="nope")


# -- ledger -------------------------------------------------------------------------


def ledger_timeline() -> Timeline:
    tl = Timeline()
    for i in range(10):  # acked at 0.1 .. 1.0 s
        tl.add_write(f"k{i}", T0 + i * 0.1, T0 + 0.1 + i * 0.1, "ok")
    tl.add_write("maybe-1", T0 + 1.05, None, "indeterminate")
    tl.add_write("maybe-2", T0 + 1.06, None, "indeterminate")
    tl.add_write("failed", T0 + 1.07, None, "fail")
    tl.fault_injected(fault(1.5, 1.6))
    return tl


def test_ledger_lost_recovered_unexpected_and_rpo() -> None:
    tl = ledger_timeline()
    present = {"k0", "k1", "k2", "k3", "k4", "k5", "k6", "maybe-1", "ghost"}  # k7..k9 lost
    m = measure(tl.snapshot(), CRITERIA, present=present)
    ledger = m.ledger
    assert ledger is not None
    assert (ledger.written, ledger.acknowledged, ledger.indeterminate, ledger.failed) == (13, 10, 2, 1)
    assert ledger.lost == 3
    assert ledger.lost_keys == ("k7", "k8", "k9")
    assert ledger.recovered == 1
    assert ledger.unexpected == 1
    # RPO = t_inject - min(ack of lost) = 1.5 - 0.8
    assert ledger.rpo == pytest.approx(0.7, abs=1e-6)
    verdict = judge(m, Budget(rpo=0.5, rpo_writes=0))
    assert verdict.line == "RPO 700ms > budget 500ms (3 acknowledged writes lost); RPO 3 writes lost > budget 0"


def test_indeterminate_writes_are_never_lost() -> None:
    tl = ledger_timeline()
    present = {f"k{i}" for i in range(10)}
    ledger = measure(tl.snapshot(), CRITERIA, present=present).ledger
    assert ledger is not None
    assert ledger.lost == 0
    assert ledger.rpo is None
    assert judge(measure(tl.snapshot(), CRITERIA, present=present), Budget(rpo=0)).passed


def test_rpo_zero_budget_is_breached_by_any_lost_write_even_acked_after_the_fault() -> None:
    tl = Timeline()
    tl.fault_injected(fault(1.0, 1.1))
    tl.add_write("late", T0 + 2.0, T0 + 2.01, "ok")
    m = measure(tl.snapshot(), CRITERIA, present=set())
    assert m.ledger is not None and m.ledger.rpo == 0.0 and m.ledger.lost == 1
    assert judge(m, Budget(rpo=0)).line == "RPO 0s > budget 0s (1 acknowledged write lost)"


def test_a_retried_key_takes_its_best_outcome() -> None:
    tl = Timeline()
    tl.add_write("k", T0, None, "fail")
    tl.add_write("k", T0 + 0.1, T0 + 0.2, "ok")
    tl.fault_injected(fault(1.0, 1.1))
    ledger = measure(tl.snapshot(), CRITERIA, present=set()).ledger
    assert ledger is not None and (ledger.written, ledger.acknowledged, ledger.lost) == (1, 1, 1)


def test_rpo_budget_without_verification_is_a_breach_that_says_how_to_fix_it() -> None:
    m = measure(ledger_timeline().snapshot(), CRITERIA)
    line = judge(m, Budget(rpo=0)).line
    assert line == "RPO not measured: the writes were never verified; call experiment.verify_writes(reader)"


def test_lost_writes_charged_to_the_fault_that_followed_them() -> None:
    tl = Timeline()
    tl.fault_injected(fault(1.0, 1.1, "a"))
    tl.fault_injected(fault(5.0, 5.1, "b"))
    tl.add_write("before-a", T0 + 0.7, T0 + 0.8, "ok")  # 0.2 s before a
    tl.add_write("before-b", T0 + 3.9, T0 + 4.0, "ok")  # 1.0 s before b
    ledger = measure(tl.snapshot(), CRITERIA, present=set()).ledger
    assert ledger is not None and ledger.rpo == pytest.approx(1.0, abs=1e-6)


# -- properties ---------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    outage_start=st.floats(min_value=1.0, max_value=2.0),
    outage_length=st.floats(min_value=0.0, max_value=2.0),
    step=st.sampled_from([0.005, 0.01, 0.02]),
)
def test_rto_error_is_bounded_by_the_evidence_spacing(outage_start: float, outage_length: float, step: float) -> None:
    """Whatever the outage, the measured RTO overshoots the truth by less than one spacing + latency."""
    tl = scenario((outage_start, outage_start + outage_length), end=outage_start + outage_length + 2.0, step=step)
    m = measure(tl.snapshot(), CRITERIA)
    (e,) = m.episodes
    if e.failed == 0:
        assert m.rto == 0.0
    else:
        truth = outage_start + outage_length - 1.0
        assert m.rto is not None
        assert truth - 1e-6 <= m.rto <= truth + step + 0.002 + 1e-6
        assert m.uncertainty is not None and m.uncertainty <= step + 0.002 + 1e-6


# -- evidence has two ends: closed-loop clients, hung requests, brackets ------------------


def test_a_request_sent_into_the_outage_and_answered_after_it_dates_recovery_at_its_completion() -> None:
    """The issue's recording: refusals for 0.5 s, one request hanging until +2.0 s, then successes."""
    tl = Timeline()
    tl.fault_injected(fault(0.0, 0.0))
    ops(tl, 0.0, 0.5, 0.01, False)
    tl.add_operation(T0 + 0.5, 1.5, True, "GET /", "load")  # sent into the outage, answered at +2.0 s
    ops(tl, 2.0, 4.0, 0.01, True)
    m = measure(tl.snapshot(), CRITERIA)
    (e,) = m.episodes
    assert m.rto == pytest.approx(2.0, abs=1e-6)
    assert e.recovery_from == pytest.approx(T0 + 0.49, abs=1e-6)
    assert m.uncertainty == pytest.approx(1.51, abs=1e-6)
    verdict = judge(m, Budget(rto=1.0))
    assert not verdict.passed
    assert verdict.line.startswith("RTO 2.00s (±1.51s) > budget 1.00s")


def test_two_requests_hanging_one_second_each_give_a_bracket_of_their_real_width() -> None:
    """One blocking client with 1 s timeouts: the recovery lies anywhere in (+1.0 s, +2.0 s]."""
    tl = Timeline()
    tl.fault_injected(fault(0.0, 0.0))
    tl.add_operation(T0 + 0.0, 1.0, False, "GET /", "load", "Timeout")
    tl.add_operation(T0 + 1.0, 1.0, False, "GET /", "load", "Timeout")
    ops(tl, 2.0, 4.0, 0.01, True)
    m = measure(tl.snapshot(), CRITERIA)
    assert m.rto == pytest.approx(2.001, abs=1e-6)
    assert m.uncertainty == pytest.approx(1.001, abs=1e-6)
    verdict = judge(m, Budget(rto=5.0))
    assert verdict.passed
    (note,) = verdict.notes
    assert note.startswith("evidence too sparse around recovery: it happened between +1.00s and +2.00s (±1.00s")
    assert "more concurrent clients" in note and "client timeouts" in note
    assert judge(m, Budget(rto=20.0)).notes == ()  # 1 s is under 10 % of a 20 s budget


def test_a_success_sent_before_the_last_failure_does_not_prove_recovery() -> None:
    """Concurrent clients: an answer to a request sent before the last refusal may predate it."""
    tl = Timeline()
    tl.fault_injected(fault(0.0, 0.0))
    ops(tl, 0.0, 1.0, 0.01, False)
    tl.add_operation(T0 + 0.5, 0.6, True, "GET /slow", "load")  # completes at +1.1 s, sent before +0.99 s
    ops(tl, 1.5, 4.0, 0.01, True)
    m = measure(tl.snapshot(), CRITERIA)
    assert m.rto == pytest.approx(1.501, abs=1e-6)
    assert m.episodes[0].recovery_from == pytest.approx(T0 + 0.99, abs=1e-6)


def test_a_failure_in_flight_when_the_fault_is_injected_is_evidence_of_the_outage() -> None:
    """One blocking client: its request sent just before t_inject times out 1 s later; the
    next one, sent at +1.0 s, is answered at the repair (+2.0 s). Without the first failure
    the episode would show no failure at all, and RTO 0."""
    tl = Timeline()
    ops(tl, 0.0, 1.0, 0.01, True)
    tl.fault_injected(fault(1.0, 1.0))
    tl.add_operation(T0 + 0.999, 1.0, False, "GET /", "load", "Timeout")
    tl.add_operation(T0 + 2.0, 1.0, True, "GET /", "load")  # held until the repair at +3.0 s
    ops(tl, 3.0, 5.0, 0.01, True)
    m = measure(tl.snapshot(), CRITERIA)
    (e,) = m.episodes
    assert e.failed == 1 and e.detection_delay == 0.0
    assert m.rto == pytest.approx(2.0, abs=1e-6)
    assert e.recovery_from == pytest.approx(T0 + 1.0, abs=1e-6)
    assert m.baseline.failed == 1  # by its send time it is still a baseline operation
    state = tl.recovery_state()
    assert state.failed


def test_clock_uncertainty_of_remote_load_hosts_widens_the_bracket() -> None:
    tl = scenario((1.0, 2.5))
    tl.mark(T0, "clock", "worker-1", offset_s=0.2, uncertainty_s=0.004)
    tl.mark(T0, "clock", "worker-2", offset_s=-0.1, uncertainty_s=0.003)
    tl.mark(T0, "clock", "worker-3", offset_s=None, uncertainty_s=None)  # not estimated yet
    m = measure(tl.snapshot(), CRITERIA)
    assert m.clock_uncertainty == 0.004
    assert m.rto == pytest.approx(1.506, abs=1e-6)
    assert m.uncertainty == pytest.approx(0.012 + 0.008, abs=1e-6)


def closed_loop(
    clients: int, timeout: float, mode: str, outage: tuple[float, float], stagger: float, end: float
) -> Timeline:
    """Blocking clients against a service that is down during ``outage``; the fault at 0 s.

    ``refuse``: a request sent while down fails at once (a dead process). ``hang``: it is
    answered when the outage ends, unless the client's timeout fires first (a paused one).
    """
    down, up = outage
    latency = 0.001
    tl = Timeline()
    tl.fault_injected(fault(0.0, 0.0))
    for client in range(clients):
        t = client * stagger
        while t < end:
            if down <= t < up and mode == "refuse":
                ok, done = False, t + 0.0005
            elif down <= t < up:
                ok, done = (True, up + latency) if up + latency - t <= timeout else (False, t + timeout)
            else:
                ok, done = True, t + latency
            tl.add_operation(T0 + t, done - t, ok, "GET /", "load", None if ok else "down")
            t = done
    return tl


@settings(max_examples=80, deadline=None)
@given(
    clients=st.integers(min_value=1, max_value=5),
    timeout=st.sampled_from([0.05, 0.3, 1.0]),
    mode=st.sampled_from(["refuse", "hang"]),
    down=st.floats(min_value=0.0, max_value=0.5),
    length=st.floats(min_value=0.05, max_value=2.5),
    stagger=st.floats(min_value=0.0, max_value=0.2),
)
def test_the_bracket_contains_the_true_recovery_and_the_rto_never_undershoots(
    clients: int, timeout: float, mode: str, down: float, length: float, stagger: float
) -> None:
    """Closed-loop clients of any concurrency and timeout: a PASS is a proof, never a guess."""
    up = down + length
    m = measure(closed_loop(clients, timeout, mode, (down, up), stagger, up + 3.0).snapshot(), CRITERIA)
    (e,) = m.episodes
    if e.failed == 0:  # every request answered (late): an outage the load never saw as failures
        assert m.rto == 0.0
        return
    assert m.status == "recovered"
    assert e.recovery_from is not None and e.t_recovered is not None and m.rto is not None
    assert e.recovery_from <= T0 + up <= e.t_recovered + 1e-6
    assert m.rto >= up - 1e-6


# -- the two column backends agree ----------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=10**6),
    faults=st.integers(min_value=0, max_value=4),
    clients=st.integers(min_value=1, max_value=4),
    timeout=st.sampled_from([0.05, 0.3, 1.0]),
    mode=st.sampled_from(["refuse", "hang"]),
)
def test_numpy_and_pure_backends_give_identical_measurements(
    seed: int, faults: int, clients: int, timeout: float, mode: str
) -> None:
    """numpy is only a speed-up: every figure, to the last bit, is the pure path's."""
    pytest.importorskip("numpy")
    from pytest_resiliency import columns as backend

    rng = random.Random(seed)
    tl = closed_loop(clients, timeout, mode, (rng.uniform(0, 0.5), rng.uniform(0.6, 2.0)), rng.uniform(0, 0.1), 3.5)
    for i in range(faults):
        tl.fault_injected(fault(0.5 + i * 0.7, 0.6 + i * 0.7 + rng.uniform(0, 1), f"extra{i}"))
    evidence = tl.snapshot()
    rows = list(zip(evidence.op_start, evidence.op_latency, evidence.op_ok, strict=True))
    rng.shuffle(rows)  # arrival order is not send order
    shuffled = Timeline()
    for record in evidence.faults:
        shuffled.fault_injected(record)
    for start, latency, ok in rows:
        shuffled.add_operation(start, latency, bool(ok), "GET /", "load")
    shuffled_evidence = shuffled.snapshot()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(backend, "NUMPY_FROM", 10**12)
        pure = measure(shuffled_evidence, CRITERIA).as_dict()
        assert type(backend.columns(shuffled_evidence)).__name__ == "_PureColumns"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(backend, "NUMPY_FROM", 0)
        fast = measure(shuffled_evidence, CRITERIA).as_dict()
        assert type(backend.columns(shuffled_evidence)).__name__ == "_NumpyColumns"
    assert fast == pure


def test_every_budgeted_nfr_is_judged_by_exactly_one_rule() -> None:
    """A new NFR in Budget without a verdict rule would be silently ignored: the table must cover it."""
    from pytest_resiliency.budget import _NFRS
    from pytest_resiliency.verdict import LIMITS

    ruled = ["rto", "rpo"] + [limit.nfr for limit in LIMITS]
    assert sorted(ruled) == sorted(_NFRS) and len(set(ruled)) == len(ruled)


def test_a_budget_with_no_evidence_breaches_every_nfr_as_unknown_not_as_a_number() -> None:
    tl = Timeline()
    tl.fault_injected(fault(0.0, 0.1))
    m = measure(tl.snapshot(), CRITERIA)
    budget = Budget(rto=1.0, rpo=0.0, rpo_writes=0, error_rate=0.1, p99=0.3, alert_within=1.0)
    verdict = judge(m, budget)
    assert [b.nfr for b in verdict.breaches] == ["rto", "rpo", "rpo_writes", "error_rate", "p99", "alert_within"]
    assert all(b.measured is None for b in verdict.breaches)
    assert "call experiment.verify_writes(reader)" in verdict.line and "no alert raised (budget 1.00s)" in verdict.line
