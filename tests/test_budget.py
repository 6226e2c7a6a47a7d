"""Budget parsing: durations, ratios, marker arguments and their errors."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_resiliency.budget import (
    MARKER_ARGUMENTS,
    Budget,
    BudgetError,
    Criteria,
    format_duration,
    parse_duration,
    parse_marker,
    shown,
)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (5, 5.0),
        (0, 0.0),
        (1.5, 1.5),
        ("250ms", 0.25),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1.5s", 1.5),
        (" 2s ", 2.0),
        ("7", 7.0),
        (".5s", 0.5),
    ],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value, "rto") == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value", ["abc", "5 minutes", "-1s", "1d", "", "5ms5", "1e3", "5 s", "\u0665s", "\uff15s", "9" * 400 + "s"]
)
def test_bad_duration_strings_name_the_argument_and_the_accepted_forms(value: str) -> None:
    with pytest.raises(BudgetError) as info:
        parse_duration(value, "rto")
    assert f"rto={shown(value)}" in str(info.value)
    assert "'250ms', '30s', '5m', '1h'" in str(info.value)


@pytest.mark.parametrize("value", [-1, -0.5, math.inf, math.nan])
def test_negative_and_non_finite_durations_are_refused(value: float) -> None:
    with pytest.raises(BudgetError, match=r"must be a finite duration >= 0|is not a duration"):
        parse_duration(value, "p99")


@pytest.mark.parametrize("value", [True, None, [1], {"s": 1}])
def test_wrong_types_are_refused(value: object) -> None:
    with pytest.raises(BudgetError, match="is not a duration"):
        parse_duration(value, "rto")


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.0, "0s"), (0.004, "4.0ms"), (0.412, "412ms"), (7.41, "7.41s"), (125, "2m05s")]
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_marker_arguments_become_a_budget_and_criteria() -> None:
    budget, criteria = parse_marker(
        (),
        {
            "rto": "5s",
            "rpo": 0,
            "rpo_writes": 0,
            "error_rate": "2%",
            "p99": "300ms",
            "alert_within": "1m",
            "recovery_successes": 3,
            "recovery_window": "500ms",
            "timeout": "30s",
            "disruption": "az",
            "tier": "tier-1",
        },
        Criteria(),
    )
    assert budget == Budget(
        rto=5.0, rpo=0.0, rpo_writes=0, error_rate=0.02, p99=0.3, alert_within=60.0, disruption="az", tier="tier-1"
    )
    assert criteria == Criteria(successes=3, window=0.5, timeout=30.0)


def test_marker_wins_over_defaults_per_argument() -> None:
    defaults = Criteria(successes=9, window=2.0, timeout=10.0)
    _, criteria = parse_marker((), {"recovery_window": 0.25}, defaults)
    assert criteria == Criteria(successes=9, window=0.25, timeout=10.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rot": "5s"}, "unknown argument rot; accepted: rto, rpo, rpo_writes"),
        ({"rto": "abc"}, "rto='abc' is not a duration"),
        ({"rto": -1}, "rto=-1 must be a finite duration >= 0"),
        ({"rpo_writes": -1}, "rpo_writes=-1 must be a whole number >= 0"),
        ({"rpo_writes": 1.5}, "rpo_writes=1.5 must be a whole number >= 0"),
        ({"recovery_successes": 0}, "recovery_successes=0 must be a whole number >= 1"),
        ({"error_rate": 2}, "error_rate=2 must be a fraction between 0 and 1 (0.02) or a percentage ('2%')"),
        ({"error_rate": "lots"}, "error_rate='lots' must be a fraction"),
        (
            {"disruption": "datacenter"},
            "disruption='datacenter' is not accepted; use one of software, hardware, az, region",
        ),
        ({"tier": ""}, "tier='' must be a non-empty label"),
    ],
)
def test_bad_marker_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(BudgetError) as info:
        parse_marker((), kwargs, Criteria())
    assert message in str(info.value)


def test_positional_arguments_are_refused() -> None:
    with pytest.raises(BudgetError, match=r"positional arguments \('5s',\) are not accepted; use keywords"):
        parse_marker(("5s",), {}, Criteria())


def test_none_means_not_budgeted() -> None:
    budget, _ = parse_marker((), {"rto": None}, Criteria())
    assert budget.rto is None
    assert budget.empty


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rto": 10**400}, "rto=1000000000"),
        ({"rto": 10**400}, "must be a finite duration >= 0"),
        ({"tier": -(10**5000)}, "tier=<an integer of about 5001 digits> must be a non-empty label"),
        ({"rpo_writes": 10**5000}, "rpo_writes=<an integer of about 5001 digits> must be a whole number >= 0"),
        ({"rpo_writes": 2**53 + 1}, "(at most 2**53)"),
        ({"recovery_successes": 10**30}, "recovery_successes=1000000000000000000000000000000 must be"),
        ({"error_rate": 10**400}, "must be a fraction between 0 and 1"),
        ({"error_rate": "\u0665%"}, "must be a fraction between 0 and 1"),
        ({"tier": "x" * 300}, "at most 200 characters"),
        ({"disruption": ["az"]}, "disruption=['az'] is not accepted"),
    ],
)
def test_huge_and_exotic_values_are_budget_errors_never_crashes(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(BudgetError) as info:
        parse_marker((), kwargs, Criteria())
    assert message in str(info.value)
    assert len(str(info.value)) < 400


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(MARKER_ARGUMENTS),
    value=st.one_of(
        st.integers(min_value=-(10**6000), max_value=10**6000),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=50),
        st.booleans(),
        st.none(),
        st.lists(st.integers(), max_size=3),
        st.builds(
            lambda n, u: f"{n}{u}",
            st.integers(min_value=0, max_value=10**500),
            st.sampled_from(["", "ms", "s", "m", "h", "%"]),
        ),
    ),
)
def test_any_marker_value_is_accepted_or_a_budget_error(name: str, value: object) -> None:
    """Whatever a user writes, the parser says yes (and the result serialises) or a clear no."""
    try:
        budget, criteria = parse_marker((), {name: value}, Criteria())
    except BudgetError as exc:
        message = str(exc)
        assert name in message and len(message) < 400
        return
    json.dumps({**budget.as_dict(), **criteria.as_dict()}, allow_nan=False)
    for seconds in (budget.rto, budget.rpo, budget.p99, budget.alert_within, criteria.window, criteria.timeout):
        if seconds is not None:
            format_duration(seconds)
