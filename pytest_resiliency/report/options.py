"""Options of the reports (terminal width, JUnit placement, GitHub annotations, report file paths),
checked at start, and the scrubbing hooks that must be in place before anything prints.

Loaded through ``plugin.pytest_plugins``; imports nothing heavy.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from pathlib import Path

import pytest

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
    from ..errors import ConfigError

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
                from ..errors import ConfigError

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


class ReportScrubbing:
    """Scrubs the node ids of the plugin's tests at collection and their warnings as recorded
    (see :mod:`.scrubbing` for why); every test's with ``resiliency_scrub_all_reports``."""

    def __init__(self, scrub_all: bool) -> None:
        self.scrub_all = scrub_all
        self.ours: set[str] = set()  # node ids (scrubbed) of the plugin's tests in this process

    @pytest.hookimpl(tryfirst=True)  # before the marker check, whose usage error names the test
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        from ..settings import uses_plugin_fixture

        mine = [
            item
            for item in items
            if self.scrub_all or item.get_closest_marker("resiliency") is not None or uses_plugin_fixture(item)
        ]
        if not mine:
            return
        from .scrubbing import rename
        from .secrets import env_secrets

        known = env_secrets()
        for item in mine:
            rename(item, known)
            self.ours.add(item.nodeid)

    @pytest.hookimpl(tryfirst=True)  # before the terminal stores it, and before xdist sends it on
    def pytest_warning_recorded(self, warning_message: warnings.WarningMessage, nodeid: str) -> None:
        if self.scrub_all or (nodeid and nodeid in self.ours):
            from .scrubbing import scrub_warning

            scrub_warning(warning_message)


def pytest_configure(config: pytest.Config) -> None:
    check(config)
    from ..settings import SCRUB_ALL_INI

    config.pluginmanager.register(ReportScrubbing(bool(config.getini(SCRUB_ALL_INI))), "resiliency-scrubbing")
