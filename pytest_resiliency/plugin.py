"""pytest entry point (``pytest11: resiliency``): options, markers, the fixture, hook wiring.

Kept light on purpose: nothing here imports boto3, moto or locust, so installing the
plugin costs every pytest run next to nothing. Heavy parts are imported by the
fixtures that need them, when a test asks for them.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .settings import (  # noqa: F401 - re-exported: these names were public here
    CRITERIA_SETTINGS,
    DEFAULT_MAX_OPERATIONS,
    DEFAULT_RECOVERY_SUCCESSES,
    DEFAULT_RECOVERY_WINDOW,
    DEFAULT_TIMEOUT,
    MARKER_ARGUMENTS,
    PLUGIN_FIXTURES,
    SCRUB_ALL_INI,
    STATE,
    SessionState,
    aws_mode,
    header_line,
    journal_path,
    setting,
    uses_plugin_fixture,
    whole,
)

if TYPE_CHECKING:
    from .budget import Budget, Criteria
    from .experiment import Experiment


# Fixtures, options and hooks of each capability live beside it; each of these modules
# must import nothing heavy at module level (boto3, moto and locust load inside fixtures).
pytest_plugins = [
    "pytest_resiliency.targets.fixtures",
    "pytest_resiliency.fault_fixtures",
    "pytest_resiliency.load.fixtures",
    "pytest_resiliency.aws.fixtures",
    "pytest_resiliency.ctk.collect",
    "pytest_resiliency.report.options",
    "pytest_resiliency.report.integrations",
]

# Only the markers the plugin owns. Selection markers (aws, slow...) belong to the suites that
# use them: registering generic names here would hide a forgotten registration from
# --strict-markers in every suite of the environment.
MARKERS = {
    "resiliency": f"resiliency({', '.join(a + '=...' for a in MARKER_ARGUMENTS)}): "
    "the test is a resiliency experiment with these NFR budgets",
}


# The plugin's fixtures: a test that uses one is a resiliency test (its reports are scrubbed).

OURS = pytest.StashKey[bool]()
BUDGET = pytest.StashKey[tuple["Budget", "Criteria"]]()
EXPERIMENT = pytest.StashKey["Experiment"]()
PAYLOAD = pytest.StashKey[dict[str, Any]]()
MARKER_ERROR = pytest.StashKey[str]()
LOAD = frozenset({"load"})  # the fixture whose tests make a session start the locust zygote early


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("resiliency", "resiliency experiments (RTO/RPO budgets)")
    group.addoption(
        "--resiliency-json",
        metavar="PATH",
        default=None,
        help="write the JSON journal of every resiliency test (budget, measurement, faults, verdict) to PATH",
    )
    group.addoption(
        "--resiliency-summary-md",
        metavar="PATH",
        default=None,
        help="write a Markdown scorecard of the run to PATH (e.g. $GITHUB_STEP_SUMMARY)",
    )
    options = (
        ("recovery_successes", "N", f"consecutive successes that mark recovery (default {DEFAULT_RECOVERY_SUCCESSES})"),
        (
            "recovery_window",
            "DURATION",
            f"failure-free time that confirms recovery (default {DEFAULT_RECOVERY_WINDOW:g}s)",
        ),
        (
            "recovery_timeout",
            "DURATION",
            f"how long after a fault recovery is awaited (default {DEFAULT_TIMEOUT:g}s)",
        ),
        ("timeout", "DURATION", "deprecated spelling of recovery_timeout"),
        (
            "max_operations",
            "N",
            f"operations kept per test before evidence is dropped (default {DEFAULT_MAX_OPERATIONS})",
        ),
    )
    parser.addini(
        SCRUB_ALL_INI,
        "scrub secrets from the reports of every test, not only of resiliency tests, experiment files "
        "and the plugin's own outputs (default false)",
        type="bool",
        default=False,
    )
    for name, metavar, text in options:
        group.addoption(f"--resiliency-{name.replace('_', '-')}", metavar=metavar, default=None, help=text)
        parser.addini(f"resiliency_{name}", text + "; the marker and the command line win", default=None)


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}" if not text.startswith(name) else text)
    max_ops = setting(config, "max_operations")
    max_operations = DEFAULT_MAX_OPERATIONS if max_ops is None else whole(max_ops, "max_operations", 1)
    state = config.stash[STATE] = SessionState(config, max_operations)
    if any(setting(config, name) is not None for name in CRITERIA_SETTINGS):
        state.criteria  # noqa: B018 - set by the user: check it now, a bad value is a usage error
    journal = config.getoption("resiliency_json")
    if not hasattr(config, "workerinput"):  # xdist workers send reports; the controller writes
        from .report.collector import ResultCollector

        summary_md = config.getoption("resiliency_summary_md")
        config.pluginmanager.register(
            ResultCollector(
                config,
                Path(journal).resolve() if journal else None,
                Path(summary_md).resolve() if summary_md else None,
                scrub_all=bool(config.getini(SCRUB_ALL_INI)),
            ),
            "resiliency-collector",
        )
        if config.pluginmanager.has_plugin("html") and config.getoption("htmlpath", None):
            from .report.html import HtmlReport

            config.pluginmanager.register(HtmlReport(config), "resiliency-html")


def _marker_kwargs(item: pytest.Item) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
    """Merge ``resiliency`` markers: the closest (function) wins per argument over class/module."""
    marks = list(item.iter_markers("resiliency"))
    if not marks:
        return None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}
    for mark in reversed(marks):
        args = args or mark.args
        kwargs.update(mark.kwargs)
    return args, kwargs


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    state = config.stash[STATE]
    errors = []
    for item in items:
        found = _marker_kwargs(item)
        if found is None:
            if uses_plugin_fixture(item):
                item.stash[OURS] = True
            continue
        item.stash[OURS] = True
        error = _parse_budget(item, found, state.criteria)
        if error is not None:
            errors.append(f"{item.nodeid}: @pytest.mark.resiliency: {error}")
            item.stash[MARKER_ERROR] = errors[-1]
        fixturenames = getattr(item, "fixturenames", None)
        if fixturenames is None:
            continue
        if error is not None:  # first: its fixture fails the test before any other sets up
            if "experiment" in fixturenames:
                fixturenames.remove("experiment")
            fixturenames.insert(0, "experiment")
        elif "experiment" not in fixturenames:
            fixturenames.append("experiment")
    if any(OURS in item.stash for item in items):  # only then: plain suites never pay for them
        _enable_verdicts(config)
    # A usage error stops the run before anything is injected. An xdist worker cannot raise
    # one (xdist reports an INTERNALERROR), so there each bad test errors at setup instead.
    if errors and not hasattr(config, "workerinput"):
        raise pytest.UsageError("invalid resiliency marker:\n  " + "\n  ".join(errors))


def pytest_collection_finish(session: pytest.Session) -> None:
    """A session that will use ``load`` starts the locust zygote now, in the background.

    Only then: a suite that never asks for this plugin's ``load`` (a fixture of its own by that
    name does not count) starts nothing, nor does ``--collect-only``. Under xdist each worker
    collects, and each starts its own (see ``load/forkserver.py``).
    """
    if session.config.option.collectonly or not any(uses_plugin_fixture(item, LOAD) for item in session.items):
        return
    from .load import forkserver
    from .load.processes import base_environment

    forkserver.prestart(base_environment())


def _parse_budget(item: pytest.Item, found: tuple[tuple[Any, ...], dict[str, Any]], criteria: Criteria) -> str | None:
    """Store the item's budget; return what is wrong with its marker, if anything."""
    from .budget import BudgetError, deprecated_arguments, parse_marker

    try:
        item.stash[BUDGET] = parse_marker(*found, defaults=criteria)
    except BudgetError as exc:
        return str(exc)
    for message in deprecated_arguments(found[1]):
        item.warn(DeprecationWarning(f"{item.nodeid}: {message}"))
    return None


def pytest_report_header(config: pytest.Config) -> str | None:
    """Real AWS is announced before anything runs, whatever is collected: it is never a surprise."""
    return header_line(config, None) if aws_mode(config) == "real" else None


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> str | None:
    """After "collected N items", only when resiliency tests are among them (the xdist controller,
    which collects nothing, prints the line above its resiliency summary instead)."""
    count = sum(1 for item in items if OURS in item.stash)
    return header_line(config, count) if count and aws_mode(config) != "real" else None


class _HookRelay:
    """Forwards fault events from the experiment to the plugin hooks."""

    def __init__(self, config: pytest.Config) -> None:
        self._hook = config.hook

    def fault_injected(self, fault: Any, experiment: Experiment) -> None:
        self._hook.pytest_resiliency_fault_injected(fault=fault, experiment=experiment)

    def fault_reverted(self, fault: Any, experiment: Experiment) -> None:
        self._hook.pytest_resiliency_fault_reverted(fault=fault, experiment=experiment)


@pytest.fixture
def experiment(request: pytest.FixtureRequest) -> Iterator[Experiment]:
    """This test's experiment: inject faults, monitor probes, verify writes, measure.

    Faults used as context managers inside the test record into it on their own. Under xdist,
    where a bad marker cannot be a usage error, this is where its test errors (no hook runs
    for every plain test to check it).
    """
    if MARKER_ERROR in request.node.stash:
        pytest.fail(f"invalid resiliency marker: {request.node.stash[MARKER_ERROR]}", pytrace=False)
    from .budget import Budget
    from .context import bind_experiment
    from .experiment import Experiment

    state = request.config.stash[STATE]
    budget, criteria = request.node.stash.get(BUDGET, (Budget(), state.criteria))
    exp = Experiment(request.node.nodeid, budget, criteria, _HookRelay(request.config), state.max_operations)
    request.node.stash[EXPERIMENT] = exp
    request.node.stash[OURS] = True  # also when requested dynamically: its reports are the plugin's
    _enable_verdicts(request.config)
    bind_experiment(exp)
    try:
        yield exp
    finally:
        errors = exp.finish(settle=False)  # a no-op when the test body ran: the call hook finished it
        bind_experiment(None)
        if exp.faults:
            from .faults import termination

            termination.settle()  # a watchdog may have reverted the last fault: SIGTERM back to default
        if exp.aborted:
            pytest.fail(f"aborted: {exp.aborted}", pytrace=False)
        if errors:
            pytest.fail("resiliency: fault revert failed: " + "; ".join(errors), pytrace=False)


def _conclude(item: pytest.Item, exp: Experiment, body_failed: bool) -> str | None:
    """Revert, settle, measure, judge; store the payload. Returns the failure line, if any."""
    from .report import payload as payloads
    from .verdict import judge

    errors = exp.finish(settle=not body_failed)
    measurement = exp.measure()
    verdict = judge(measurement, exp.budget)
    if exp.aborted:
        outcome = payloads.ABORTED
    elif body_failed or errors:
        outcome = payloads.ERROR
    else:
        outcome = payloads.PASS if verdict.passed else payloads.BREACH
    payload = payloads.build(exp, measurement, verdict, outcome, errors)
    item.stash[PAYLOAD] = payload
    item.user_properties.extend(payloads.junit_properties(payload))
    item.config.hook.pytest_resiliency_measured(item=item, experiment=exp, payload=payload)
    if errors:
        return "resiliency: fault revert failed: " + "; ".join(errors)
    if outcome == payloads.BREACH:
        item.config.hook.pytest_resiliency_breached(item=item, experiment=exp, payload=payload)
        return verdict.line
    return None


class _Verdicts:
    """The per-test hooks (verdict after the body, payload onto the report).

    Registered only once a resiliency test exists (at collection, or when a test asks for
    the ``experiment`` fixture itself): a suite that never uses the plugin never pays for
    two wrappers around every test.
    """

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[None]:
        if EXPERIMENT not in item.stash:
            return (yield)
        exp = item.stash[EXPERIMENT]
        try:
            result = yield
        except BaseException:
            _conclude(item, exp, body_failed=True)
            raise
        line = _conclude(item, exp, body_failed=False)
        if exp.aborted:
            return result  # the fixture's teardown turns it into an ERROR, not a failure
        if line:
            pytest.fail(line, pytrace=False)
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if OURS not in item.stash:
            return report  # every plain test's report, untouched
        report.resiliency_scrub = True  # type: ignore[attr-defined]  # the collector scrubs it (xdist too)
        payload = item.stash.get(PAYLOAD, None)
        if (payload is not None and report.when == "call") or (
            payload is not None and report.when == "teardown" and item.stash[EXPERIMENT].aborted
        ):
            report.resiliency = payload  # type: ignore[attr-defined]
        return report


VERDICTS = "resiliency-verdicts"


def _enable_verdicts(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(VERDICTS):
        config.pluginmanager.register(_Verdicts(), VERDICTS)
