"""Budgets: the NFRs a test declares with ``@pytest.mark.resiliency(...)``.

Everything here is parsing and validation. A bad argument raises :class:`BudgetError`
with a message that names the argument, the value and what is accepted; the plugin
prefixes the test id and turns it into a usage error, so a typo never becomes a
traceback or, worse, a silently ignored budget.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from pytest_resiliency.errors import ConfigError
from pytest_resiliency.validate import count, duration, one_of, shown

DISRUPTIONS = ("software", "hardware", "az", "region")

DEFAULT_RECOVERY_SUCCESSES = 5
DEFAULT_RECOVERY_WINDOW = 1.0
DEFAULT_TIMEOUT = 60.0  # the recovery timeout
DEFAULT_RECOVERY_TIMEOUT = DEFAULT_TIMEOUT


class BudgetError(ConfigError):
    """A ``resiliency`` marker argument that cannot be understood; the message says what is accepted."""


def parse_duration(value: object, name: str = "duration") -> float:
    """Seconds from a number or a ``"250ms"``/``"30s"``/``"5m"``/``"1h"`` string.

    Kept for code written against it: new code calls :func:`pytest_resiliency.validate.duration`,
    which raises a plain :class:`~pytest_resiliency.errors.ConfigError`. This one raises a
    :class:`BudgetError` (a ``ConfigError`` too), as it always did.
    """
    try:
        return duration(value, name)
    except BudgetError:
        raise
    except ConfigError as exc:
        raise BudgetError(str(exc)) from None


def format_duration(seconds: float) -> str:
    """Short human form used in verdict lines and reports: ``412ms``, ``7.41s``, ``2m05s``."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms" if seconds >= 0.0095 else f"{seconds * 1000:.1f}ms"
    if seconds < 120:
        return f"{seconds:.2f}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:02.0f}s"


def _ratio(value: object, name: str) -> float:
    number = math.nan
    try:
        if isinstance(value, str) and value.strip().endswith("%") and value.strip()[:-1].strip().isascii():
            number = float(value.strip()[:-1]) / 100
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
    except (ValueError, OverflowError):
        pass
    if not 0 <= number <= 1:
        raise ConfigError(f"{name}={shown(value)} must be a fraction between 0 and 1 (0.02) or a percentage ('2%')")
    return number


MAX_LABEL = 200


def _label(value: object, name: str) -> str:
    text = value if isinstance(value, str) else str(value) if isinstance(value, int) and abs(value) < 10**18 else None
    if isinstance(value, bool) or text is None or not text.strip() or len(text) > MAX_LABEL:
        raise ConfigError(
            f"{name}={shown(value)} must be a non-empty label of at most {MAX_LABEL} characters, such as 'tier-1'"
        )
    return text


@dataclass(frozen=True)
class Criteria:
    """When service counts as recovered: ``successes`` in a row and no failure for ``window`` s."""

    successes: int = DEFAULT_RECOVERY_SUCCESSES
    window: float = DEFAULT_RECOVERY_WINDOW
    timeout: float = DEFAULT_RECOVERY_TIMEOUT  # the marker's recovery_timeout= (journal key "timeout")

    @property
    def recovery_timeout(self) -> float:
        """How long after the last fault recovery is awaited (the marker's ``recovery_timeout=``)."""
        return self.timeout

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Budget:
    """The NFRs of one test. ``None`` means the NFR is not budgeted (measured, never held)."""

    rto: float | None = None
    rpo: float | None = None
    rpo_writes: int | None = None
    error_rate: float | None = None
    p99: float | None = None
    alert_within: float | None = None
    disruption: str | None = None
    tier: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def empty(self) -> bool:
        return all(getattr(self, name) is None for name in _NFRS)


_NFRS = ("rto", "rpo", "rpo_writes", "error_rate", "p99", "alert_within")
_CRITERIA = ("recovery_successes", "recovery_window", "recovery_timeout")
MARKER_ARGUMENTS = (*_NFRS, *_CRITERIA, "disruption", "tier")
# Old spellings still accepted, with a deprecation warning naming the new keyword.
DEPRECATED_ARGUMENTS = {"timeout": "recovery_timeout"}

_PARSERS: dict[str, Callable[[Any, str], Any]] = {
    "rto": duration,
    "rpo": duration,
    "rpo_writes": lambda v, n: count(v, n, 0),
    "error_rate": _ratio,
    "p99": duration,
    "alert_within": duration,
    "disruption": lambda v, n: one_of(v, n, DISRUPTIONS),
    "tier": _label,
    "recovery_successes": lambda v, n: count(v, n, 1),
    "recovery_window": duration,
    "recovery_timeout": duration,
}


def deprecated_arguments(kwargs: Mapping[str, Any]) -> list[str]:
    """One message per old marker keyword in ``kwargs`` (``timeout=`` is ``recovery_timeout=`` now)."""
    return [
        f"@pytest.mark.resiliency({old}=...) is deprecated: use {new}= (pytest-timeout's timeout= is another thing)"
        for old, new in DEPRECATED_ARGUMENTS.items()
        if old in kwargs
    ]


def parse_marker(args: tuple[Any, ...], kwargs: Mapping[str, Any], defaults: Criteria) -> tuple[Budget, Criteria]:
    """Budget and recovery criteria from the marker's arguments; ``defaults`` come from CLI/ini.

    The marker wins over ``defaults`` (marker > CLI > ini), like pytest-timeout. Every
    problem is a :class:`BudgetError` naming the argument and what is accepted.
    """
    if args:
        raise BudgetError(f"positional arguments {shown(args)} are not accepted; use keywords such as rto='5s', rpo=0")
    given = dict(kwargs)
    for old, new in DEPRECATED_ARGUMENTS.items():
        if old in given:
            if new in given:
                raise BudgetError(f"{old}= and {new}= name the same thing; use {new}= only")
            given[new] = given.pop(old)
    unknown = sorted(set(given) - set(MARKER_ARGUMENTS))
    if unknown:
        raise BudgetError(
            f"unknown argument{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"accepted: {', '.join(MARKER_ARGUMENTS)}"
        )
    try:
        values = {name: _PARSERS[name](value, name) for name, value in given.items() if value is not None}
    except BudgetError:
        raise
    except ConfigError as exc:  # the marker's one error kind: the plugin turns it into a usage error
        raise BudgetError(str(exc)) from None
    criteria = Criteria(
        successes=values.pop("recovery_successes", defaults.successes),
        window=values.pop("recovery_window", defaults.window),
        timeout=values.pop("recovery_timeout", defaults.timeout),
    )
    return Budget(**values), criteria


__all__ = [
    "DISRUPTIONS",
    "MARKER_ARGUMENTS",
    "Budget",
    "BudgetError",
    "Criteria",
    "format_duration",
    "parse_duration",
    "parse_marker",
    "shown",
]
