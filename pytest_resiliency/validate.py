"""Argument checks, in one place: durations, sizes, rates, ports, counts, choices, types.

Every check returns the normalised value or raises :class:`~pytest_resiliency.errors.ConfigError`
whose message names the argument, shows the value (bounded: a 5,000-digit integer cannot be
printed) and says what is accepted. Modules call these instead of writing their own
``isinstance`` chains, so the same mistake reads the same everywhere.
"""

from __future__ import annotations

import math
import re
from typing import Any, TypeVar

from pytest_resiliency.errors import ConfigError

DURATION_HELP = "a number of seconds or a string like '250ms', '30s', '5m', '1h'"
SIZE_HELP = "a number of bytes or a string like '512B', '64KB', '10MB', '1GB' (KiB/MiB/GiB for powers of 1024)"
RATE_HELP = "a number of bytes per second or a string like '64KB/s', '1MB/s'"
MAX_COUNT = 2**53  # whole numbers stay exact in JSON (the journal) and in floats
_SHOWN = 60
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# ASCII digits only (float() would take Arabic-Indic or fullwidth ones), the unit right after the number.
_DURATION_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?|\.[0-9]+)(ms|s|m|h)?\s*$", re.ASCII)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?|\.[0-9]+)([kmg]i?b|b)?\s*$", re.ASCII | re.IGNORECASE)

T = TypeVar("T")


def shown(value: object) -> str:
    """``repr`` for an error message, bounded in length."""
    try:
        text = repr(value)
    except ValueError:  # int too large to convert to a string
        return (
            f"<an integer of about {int(value.bit_length() * 0.30103) + 1} digits>" if isinstance(value, int) else "<?>"
        )
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _number(value: object, pattern: re.Pattern[str], units: dict[str, float] | dict[str, int], default: str) -> float:
    """The value in base units, or NaN when it is not a number or a string of the pattern."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return math.nan
    try:
        if isinstance(value, str):
            match = pattern.match(value)
            if not match:
                return math.nan
            return float(match.group(1)) * units[(match.group(2) or default).lower()]
        return float(value)
    except OverflowError:
        return math.inf


def duration(value: object, name: str = "duration", *, positive: bool = False) -> float:
    """Seconds from a number or a ``"250ms"``/``"30s"``/``"5m"``/``"1h"`` string.

    Bare numeric strings are seconds, like bare numbers. Negative, infinite and NaN values
    are refused (``positive=True`` refuses 0 as well).
    """
    seconds = _number(value, _DURATION_RE, _DURATION_UNITS, "s")
    if math.isnan(seconds):
        raise ConfigError(f"{name}={shown(value)} is not a duration; use {DURATION_HELP}")
    if not math.isfinite(seconds) or seconds < 0 or (positive and seconds == 0):
        bound = "> 0" if positive else ">= 0"
        raise ConfigError(f"{name}={shown(value)} must be a finite duration {bound}; use {DURATION_HELP}")
    return seconds


def size(value: object, name: str = "size", *, positive: bool = False) -> int:
    """Bytes from a number or a ``"64KB"``/``"10MB"``/``"1GiB"`` string (decimal and binary units)."""
    amount = _number(value, _SIZE_RE, _SIZE_UNITS, "b")
    if math.isnan(amount):
        raise ConfigError(f"{name}={shown(value)} is not a size; use {SIZE_HELP}")
    if not math.isfinite(amount) or amount < 0 or amount > MAX_COUNT or (positive and amount == 0):
        bound = "> 0" if positive else ">= 0"
        raise ConfigError(f"{name}={shown(value)} must be a size {bound} and at most 2**53 bytes; use {SIZE_HELP}")
    return round(amount)


def rate(value: object, name: str = "rate") -> int:
    """Bytes per second from a number or a ``"64KB/s"`` string; must be > 0."""
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str):
        if not text.lower().endswith("/s"):
            raise ConfigError(f"{name}={shown(value)} is not a rate; use {RATE_HELP}")
        text = text[:-2]
    try:
        return size(text, name, positive=True)
    except ConfigError:
        raise ConfigError(f"{name}={shown(value)} is not a rate > 0; use {RATE_HELP}") from None


def count(value: object, name: str, minimum: int = 0, maximum: int = MAX_COUNT) -> int:
    """A whole number in ``[minimum, maximum]`` (bools refused: ``True`` is not a count)."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        top = "2**53" if maximum == MAX_COUNT else str(maximum)
        raise ConfigError(f"{name}={shown(value)} must be a whole number >= {minimum} (at most {top})")
    return value


def port(value: object, name: str = "port", *, allow_zero: bool = False) -> int:
    """A TCP port number, 1..65535 (0 = "pick a free one" where ``allow_zero``)."""
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 65535:
        raise ConfigError(f"{name}={shown(value)} must be a TCP port number between {low} and 65535")
    return value


def one_of(value: object, name: str, choices: tuple[str, ...]) -> str:
    """One of a fixed set of strings."""
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{name}={shown(value)} is not accepted; use one of {', '.join(choices)}")
    return value


def instance(value: object, name: str, kind: type[T] | tuple[type[Any], ...], accepted: str) -> T:
    """``value`` when it is an instance of ``kind`` (bools refused unless ``kind`` is bool)."""
    if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
        return value
    raise ConfigError(f"{name}={shown(value)} must be {accepted}")


__all__ = ["count", "duration", "instance", "one_of", "port", "rate", "shown", "size"]
