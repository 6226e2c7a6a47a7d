"""What every probe is: a named check that raises (or returns ``False``) when it fails.

The building block of :mod:`pytest_resiliency.probes`; monitors, services and the
extensions' probes (process, CloudWatch, Prometheus) import it from here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..errors import ConfigError

DEFAULT_PROBE_TIMEOUT = 1.0


class ProbeFailed(Exception):
    """The check ran and the answer was wrong (bad status, unexpected body)."""


class Probe:
    """A named check. Call it to run it once; it raises on failure."""

    def __init__(self, name: str, check: Callable[[], Any]) -> None:
        self.name = name
        self._check = check

    def __call__(self) -> None:
        if self._check() is False:
            raise ProbeFailed(f"{self.name} returned False")

    def __repr__(self) -> str:
        return f"<Probe {self.name}>"


def call(fn: Callable[[], Any], *, name: str | None = None) -> Probe:
    """Any callable as a probe: it fails when it raises or returns ``False``."""
    if not callable(fn):
        raise ConfigError(f"probes.call needs a callable, got {type(fn).__name__}")
    return Probe(name or str(getattr(fn, "__name__", "call")), fn)


def as_probe(probe: Probe | Callable[[], Any]) -> Probe:
    return probe if isinstance(probe, Probe) else call(probe)


def run_once(probe: Probe) -> tuple[float, float, bool, str | None]:
    """Run a probe: (start, latency, ok, error). Never raises for a failing check."""
    start = time.time()
    began = time.perf_counter()
    try:
        probe()
    except Exception as exc:  # any failure of the check is evidence, not a crash
        return start, time.perf_counter() - began, False, _describe_error(exc)
    return start, time.perf_counter() - began, True, None


def _describe_error(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
