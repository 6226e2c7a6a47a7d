"""ini options of the reports (terminal width, JUnit placement, GitHub annotations), checked at start.

Loaded through ``plugin.pytest_plugins``; imports nothing heavy.
"""

from __future__ import annotations

import pytest

INI = {
    "resiliency_summary_width": (
        "maximum width of the terminal resiliency summary in columns (default 120; 0: the terminal's width)",
        "120",
    ),
    "resiliency_junit_figures": (
        "where per-test figures go in JUnit XML: auto (properties under xunit1, [[PROPERTY|...]] lines "
        "in <system-out> under xunit2), properties, system-out or both",
        "auto",
    ),
    "resiliency_github_annotations": (
        "emit ::error annotations for breaches: auto (when GITHUB_ACTIONS=true), always or never",
        "auto",
    ),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    for name, (text, default) in INI.items():
        parser.addini(name, text, default=default)


def summary_width(config: pytest.Config) -> int:
    raw = str(config.getini("resiliency_summary_width")).strip()
    try:
        width = int(raw)
    except ValueError:
        width = -1
    if width < 0 or 0 < width < 40:
        raise pytest.UsageError(
            f"resiliency_summary_width={raw!r}: expected a whole number of columns >= 40, or 0 for the terminal's width"
        )
    return width


def check(config: pytest.Config) -> None:
    """Every report option, so a typo is a usage error before any test runs, not a surprise at the end."""
    summary_width(config)
    junit_figures = str(config.getini("resiliency_junit_figures"))
    annotations = str(config.getini("resiliency_github_annotations"))
    if junit_figures == annotations == "auto":  # the defaults: nothing to check, nothing to import
        return
    from . import github, junit

    for value, parse in (
        (junit_figures, lambda v: junit.placement(v, "xunit2")),
        (annotations, lambda v: github.enabled(v, {})),
    ):
        try:
            parse(value)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None


def pytest_configure(config: pytest.Config) -> None:
    check(config)
