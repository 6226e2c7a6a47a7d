"""ini options of the reports (terminal width, JUnit placement, GitHub annotations), checked at start.

Loaded through ``plugin.pytest_plugins``; imports nothing heavy.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import pytest

from pytest_resiliency.errors import ConfigError

# Files the run writes at its end: checked at start, so a bad path never costs the report.
OUTPUT_OPTIONS = {
    "resiliency_json": ("--resiliency-json", "journal.json", False),  # (flag, example name, appended to)
    "resiliency_summary_md": ("--resiliency-summary-md", "summary.md", True),
}

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


def output_path(value: str, flag: str, *, append: bool = False, example: str = "report") -> Path:
    """The absolute path of a report file the run will write, checked by writing next to it now.

    Refused: an existing directory, a path under a regular file, a directory that cannot be
    written (a probe file is created and removed, so a read-only mount or root-squashed share
    is caught too, not only permission bits), an existing file that cannot be opened for append.
    Missing directories are fine: the writer creates them.
    """
    path = Path(value).expanduser().resolve()
    if path.is_dir():
        raise ConfigError(f"{flag}={value}: is a directory; give a file path such as {path / example}")
    ancestor = path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"{flag}={value}: {ancestor} is a file, not a directory, so nothing can be written under it")
    try:
        if append and path.exists():
            with path.open("a", encoding="utf-8"):
                pass
        else:
            fd, probe = tempfile.mkstemp(prefix=".resiliency-probe-", dir=ancestor)
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(probe)
    except OSError as exc:
        where = path if append and path.exists() else ancestor
        raise ConfigError(f"{flag}={value}: cannot write to {where} ({exc.strerror or exc})") from None
    return path


def check(config: pytest.Config) -> None:
    """Every report option, so a typo is a usage error before any test runs, not a surprise at the end."""
    summary_width(config)
    if not hasattr(config, "workerinput"):  # the controller writes the files: it checks them
        for dest, (flag, example, append) in OUTPUT_OPTIONS.items():
            value = config.getoption(dest, None)
            if value:
                try:
                    output_path(str(value), flag, append=append, example=example)
                except ConfigError as exc:
                    raise pytest.UsageError(str(exc)) from None
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
