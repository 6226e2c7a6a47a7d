"""Budgets: the NFRs a test declares with ``@pytest.mark.resiliency(...)``.

Everything here is parsing and validation. A bad argument raises :class:`BudgetError`
with a message that names the argument, the value and what is accepted; the plugin
prefixes the test id and turns it into a usage error, so a typo never becomes a
traceback or, worse, a silently ignored budget.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from pytest_resiliency.errors import ConfigError

DURATION_HELP = "a number of seconds or a string like '250ms', '30s', '5m', '1h'"
DISRUPTIONS = ("software", "hardware", "az", "region")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# ASCII digits only (float() would take Arabic-Indic or fullwidth ones), the unit right after the number.
_DURATION_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?|\.[0-9]+)(ms|s|m|h)?\s*$", re.ASCII)
MAX_COUNT = 2**53  # whole-number arguments stay exact in JSON (the journal) and in floats
_SHOWN = 60

DEFAULT_RECOVERY_SUCCESSES = 5
DEFAULT_RECOVERY_WINDOW = 1.0
DEFAULT_TIMEOUT = 60.0


class BudgetError(ConfigError):
    """An NFR argument that cannot be understood; the message says what is accepted."""


def shown(value: object) -> str:
    """``repr`` for an error message, bounded: a 5,000-digit integer cannot even be printed."""
    try:
        text = repr(value)
    except ValueError:  # int too large to convert to a string
        return (
            f"<an integer of about {int(value.bit_length() * 0.30103) + 1} digits>" if isinstance(value, int) else "<?>"
        )
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def parse_duration(value: object, name: str = "duration") -> float:
    """Seconds from a number or a ``"250ms"``/``"30s"``/``"5m"``/``"1h"`` string.

    Bare numeric strings are seconds, like bare numbers. Negative, infinite and NaN
    values are refused: a budget of ``-1s`` is always a mistake.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BudgetError(f"{name}={shown(value)} is not a duration; use {DURATION_HELP}")
    try:
        if isinstance(value, str):
            match = _DURATION_RE.match(value)
            if not match:
                raise BudgetError(f"{name}={shown(value)} is not a duration; use {DURATION_HELP}")
            seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
        else:
            seconds = float(value)
    except OverflowError:
        seconds = math.inf
    if not math.isfinite(seconds) or seconds < 0:
        raise BudgetError(f"{name}={shown(value)} must be a finite duration >= 0; use {DURATION_HELP}")
    return seconds


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


def _count(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_COUNT:
        raise BudgetError(f"{name}={shown(value)} must be a whole number >= {minimum} (at most 2**53)")
    return value


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
        raise BudgetError(f"{name}={shown(value)} must be a fraction between 0 and 1 (0.02) or a percentage ('2%')")
    return number


def _choice(value: object, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise BudgetError(f"{name}={shown(value)} is not accepted; use one of {', '.join(choices)}")
    return value


MAX_LABEL = 200


def _label(value: object, name: str) -> str:
    text = value if isinstance(value, str) else str(value) if isinstance(value, int) and abs(value) < 10**18 else None
    if isinstance(value, bool) or text is None or not text.strip() or len(text) > MAX_LABEL:
        raise BudgetError(
            f"{name}={shown(value)} must be a non-empty label of at most {MAX_LABEL} characters, such as 'tier-1'"
        )
    return text


@dataclass(frozen=True)
class Criteria:
    """When service counts as recovered: ``successes`` in a row and no failure for ``window`` s."""

    successes: int = DEFAULT_RECOVERY_SUCCESSES
    window: float = DEFAULT_RECOVERY_WINDOW
    timeout: float = DEFAULT_TIMEOUT

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
_CRITERIA = ("recovery_successes", "recovery_window", "timeout")
MARKER_ARGUMENTS = (*_NFRS, *_CRITERIA, "disruption", "tier")

_PARSERS: dict[str, Any] = {
    "rto": parse_duration,
    "rpo": parse_duration,
    "rpo_writes": lambda v, n: _count(v, n, 0),
    "error_rate": _ratio,
    "p99": parse_duration,
    "alert_within": parse_duration,
    "disruption": lambda v, n: _choice(v, n, DISRUPTIONS),
    "tier": _label,
    "recovery_successes": lambda v, n: _count(v, n, 1),
    "recovery_window": parse_duration,
    "timeout": parse_duration,
}


def parse_marker(args: tuple[Any, ...], kwargs: Mapping[str, Any], defaults: Criteria) -> tuple[Budget, Criteria]:
    """Budget and recovery criteria from the marker's arguments; ``defaults`` come from CLI/ini.

    The marker wins over ``defaults`` (marker > CLI > ini), like pytest-timeout.
    """
    if args:
        raise BudgetError(f"positional arguments {shown(args)} are not accepted; use keywords such as rto='5s', rpo=0")
    unknown = sorted(set(kwargs) - set(MARKER_ARGUMENTS))
    if unknown:
        raise BudgetError(
            f"unknown argument{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"accepted: {', '.join(MARKER_ARGUMENTS)}"
        )
    values = {name: _PARSERS[name](value, name) for name, value in kwargs.items() if value is not None}
    criteria = Criteria(
        successes=values.pop("recovery_successes", defaults.successes),
        window=values.pop("recovery_window", defaults.window),
        timeout=values.pop("timeout", defaults.timeout),
    )
    return Budget(**values), criteria
