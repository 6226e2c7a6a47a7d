"""Our probes as Chaos Toolkit python probes (``"module": "pytest_resiliency.ctk.probes"``).

Each returns ``True`` when the check passes and ``False`` when it fails (the reason is
logged), so a hypothesis uses ``"tolerance": true`` and a down service is a steady state
*not met*, not a probe error. The runner records every execution as an operation on the
test's timeline: the evidence the RTO is measured from.
"""

from __future__ import annotations

import logging
from typing import Any

from .. import probes as _probes

__all__ = ["asg_healthy", "check", "http", "tcp"]

logger = logging.getLogger("pytest_resiliency.ctk")


def _passes(probe: _probes.Probe) -> bool:
    _, _, ok, error = _probes.run_once(probe)
    if not ok:
        logger.warning("probe %s failed: %s", probe.name, error)
    return ok


def http(
    url: str,
    status: int | list[int] | None = None,
    timeout: float | str = _probes.DEFAULT_PROBE_TIMEOUT,
    method: str = "GET",
    body_contains: str | None = None,
) -> bool:
    """``method url`` answers with ``status`` (default any 2xx/3xx) within ``timeout``."""
    accepted: Any = range(200, 400) if status is None else status
    return _passes(_probes.http(url, status=accepted, timeout=timeout, method=method, body_contains=body_contains))


def tcp(host: str, port: int, timeout: float | str = _probes.DEFAULT_PROBE_TIMEOUT) -> bool:
    """A TCP connection to ``host:port`` is accepted within ``timeout``."""
    return _passes(_probes.tcp(host, port, timeout=timeout))


def asg_healthy(group: str, minimum: int | None = None) -> bool:
    """The Auto Scaling group has at least ``minimum`` (default: desired) healthy InService instances."""
    return _passes(_probes.asg_healthy(group, minimum=minimum))


def check(probe: str, arguments: dict[str, Any] | None = None) -> bool:
    """Any probe of :mod:`pytest_resiliency.probes` by name: ``{"probe": "alarm", "arguments": {...}}``."""
    from .actions import ProviderError, _arguments

    if not isinstance(probe, str) or probe.startswith("_"):
        raise ProviderError(f"check: probe must be the name of a probe in pytest_resiliency.probes; got {probe!r}")
    try:
        factory = getattr(_probes, probe)
    except AttributeError:
        raise ProviderError(f"check: pytest_resiliency.probes has no probe {probe!r}") from None
    made = factory(**_arguments(arguments or {}))
    if not callable(made):
        raise ProviderError(f"check: pytest_resiliency.probes.{probe} does not make a probe")
    return _passes(_probes.as_probe(made))
