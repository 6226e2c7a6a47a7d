"""Per-run settings of the plugin: the recovery criteria and evidence bound from CLI/ini, and
the one-line header that states them.

Kept apart from :mod:`.plugin` (hook wiring) so that the report collector and the Chaos
Toolkit collector can read them without importing the plugin module. Imported at pytest
start-up: the standard library and pytest only; the budget parser loads on first use.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .budget import Criteria

# Start-up imports nothing of the package beyond these modules: constants that mirror other
# modules live here (tests/test_plugin.py keeps them equal) and the budget parser loads on first use.
DEFAULT_MAX_OPERATIONS = 5_000_000  # timeline.DEFAULT_MAX_OPERATIONS
DEFAULT_RECOVERY_SUCCESSES = 5  # budget.DEFAULT_RECOVERY_SUCCESSES
DEFAULT_RECOVERY_WINDOW = 1.0  # budget.DEFAULT_RECOVERY_WINDOW
DEFAULT_TIMEOUT = 60.0  # budget.DEFAULT_TIMEOUT (the recovery timeout)
MARKER_ARGUMENTS = (  # budget.MARKER_ARGUMENTS
    *("rto", "rpo", "rpo_writes", "error_rate", "p99", "alert_within"),
    *("recovery_successes", "recovery_window", "recovery_timeout", "disruption", "tier"),
)
CRITERIA_SETTINGS = ("recovery_successes", "recovery_window", "recovery_timeout", "timeout")
# Old option names still read, with a deprecation warning naming the new one (pytest-timeout owns "timeout").
DEPRECATED_SETTINGS = {"timeout": "recovery_timeout"}


class SessionState:
    """Per-process plugin state, kept in ``config.stash``.

    The recovery criteria are parsed when first needed (a run without resiliency tests never
    needs them), or at configure when an option sets them, so a bad value is a usage error.
    """

    def __init__(self, config: pytest.Config, max_operations: int) -> None:
        self._config = config
        self._criteria: Criteria | None = None
        self.max_operations = max_operations

    @property
    def criteria(self) -> Criteria:
        if self._criteria is None:
            self._criteria = criteria(self._config)
        return self._criteria


STATE = pytest.StashKey[SessionState]()
SCRUB_ALL_INI = "resiliency_scrub_all_reports"


def setting(config: pytest.Config, name: str) -> Any:
    """CLI > ini > None (the marker, which wins over both, is applied per test)."""
    value = config.getoption(f"resiliency_{name}")
    return value if value is not None else config.getini(f"resiliency_{name}")


def whole(value: Any, name: str, minimum: int) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise pytest.UsageError(f"pytest-resiliency option: {name}={value!r} must be a whole number >= {minimum}")
    return number


def _deprecated_setting(config: pytest.Config, new: str) -> Any:
    """CLI > ini, the new name before its old one on each; an old name set is warned about."""
    old = [name for name, replacement in DEPRECATED_SETTINGS.items() if replacement == new]
    for name in old:
        if config.getoption(f"resiliency_{name}") is not None or config.getini(f"resiliency_{name}") is not None:
            config.issue_config_time_warning(
                DeprecationWarning(
                    f"pytest-resiliency: --resiliency-{name} / ini resiliency_{name} is deprecated; "
                    f"use --resiliency-{new.replace('_', '-')} / ini resiliency_{new}"
                ),
                stacklevel=2,
            )
    names = [new, *old]
    for value in (
        *(config.getoption(f"resiliency_{n}") for n in names),
        *(config.getini(f"resiliency_{n}") for n in names),
    ):
        if value is not None:
            return value
    return None


def criteria(config: pytest.Config) -> Criteria:
    from .budget import Criteria
    from .errors import ConfigError
    from .validate import duration

    successes = setting(config, "recovery_successes")
    window = setting(config, "recovery_window")
    timeout = _deprecated_setting(config, "recovery_timeout")
    try:
        return Criteria(
            successes=DEFAULT_RECOVERY_SUCCESSES if successes is None else whole(successes, "recovery_successes", 1),
            window=DEFAULT_RECOVERY_WINDOW if window is None else duration(window, "recovery_window"),
            timeout=DEFAULT_TIMEOUT if timeout is None else duration(timeout, "recovery_timeout"),
        )
    except ConfigError as exc:
        raise pytest.UsageError(f"pytest-resiliency option: {exc}") from None


def journal_path() -> Path:
    """The journal directory, as ``faults.journal.journal_dir()`` names it, without creating it or
    importing the fault machinery at start-up (a test keeps the two in step)."""
    from .fault_fixtures import JOURNAL_ENV  # registered at start-up anyway (pytest_plugins)

    configured = os.environ.get(JOURNAL_ENV)
    return Path(configured) if configured else Path(tempfile.gettempdir()) / f"pytest-resiliency-{os.getuid()}"


def aws_mode(config: pytest.Config) -> str:
    from .aws.fixtures import _mode  # registered at start-up anyway (pytest_plugins)

    return _mode(config)


def header_line(config: pytest.Config, tests: int | None) -> str:
    """One line of context for a run with resiliency tests: AWS mode (loud when real), criteria, undo log directory."""
    criteria = config.stash[STATE].criteria
    mode = aws_mode(config)
    aws = "AWS REAL: faults act on real resources of the allow-listed accounts" if mode == "real" else f"AWS {mode}"
    what = "" if tests is None else f"{tests} test{'s' if tests != 1 else ''}, "
    return (
        f"resiliency: {what}{aws}, recovered = {criteria.successes} successes in a row and "
        f"{criteria.window:g}s without failure (recovery timeout {criteria.timeout:g}s), undo log {journal_path()}"
    )


PLUGIN_FIXTURES = frozenset({"experiment", "load", "aws", "service", "proxy", "netns", "resiliency_moto_server"})


def uses_plugin_fixture(item: pytest.Item, fixtures: frozenset[str] = PLUGIN_FIXTURES) -> bool:
    """Whether the test requests one of this plugin's ``fixtures`` (not a same-named fixture of its own)."""
    names = fixtures.intersection(getattr(item, "fixturenames", ()))
    if not names:
        return False
    definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    for name in names:
        defs = definitions.get(name)
        if not defs:
            continue
        module = getattr(defs[-1].func, "__module__", "") or ""
        if module.startswith("pytest_resiliency."):
            return True
    return False
