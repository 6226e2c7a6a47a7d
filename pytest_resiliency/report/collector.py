"""Collects payloads where reports are written (the serial process or the xdist controller).

Registered as a plugin object by ``plugin.pytest_configure`` so it has its config at hand,
like pytest's own LogXML. Workers never register it: their reports, payload included,
travel to the controller and arrive here through ``pytest_runtest_logreport``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


class ScrubbedRepr:
    """A failure representation whose text had secrets removed; prints like the original.

    Replaces ``report.longrepr`` only when scrubbing changed something, so ordinary
    failures keep pytest's own (coloured) representation.
    """

    def __init__(self, text: str, crash: Any) -> None:
        self.text = text
        self.reprcrash = crash

    def toterminal(self, out: Any) -> None:
        for line in self.text.splitlines():
            out.line(line)

    def __str__(self) -> str:
        return self.text


class ScrubbedCrash:
    """``reprcrash`` of a :class:`ScrubbedRepr`: the one-line message JUnit and the summary use."""

    def __init__(self, path: str, lineno: int, message: str) -> None:
        self.path, self.lineno, self.message = path, lineno, message

    def toterminal(self, out: Any) -> None:
        out.line(f"{self.path}:{self.lineno}: {self.message}")


def scrub_report(report: pytest.TestReport | pytest.CollectReport) -> None:
    """Remove secrets from what every reporter prints: node id, failure text, skip and xfail reasons,
    captured output, properties."""
    from .secrets import env_secrets, scrub, scrub_text

    known = env_secrets()
    nodeid = scrub_text(report.nodeid, known)  # already clean for a test renamed at collection
    if nodeid != report.nodeid:
        report.nodeid = nodeid
        if isinstance(report, pytest.TestReport):
            path, line, domain = report.location
            report.location = (path, line, scrub_text(domain, known))
            report.keywords = {scrub_text(k, known): v for k, v in report.keywords.items()}
    if isinstance(getattr(report, "wasxfail", None), str):
        report.wasxfail = scrub_text(report.wasxfail, known)  # type: ignore[union-attr]
    if not (
        report.longrepr is not None
        or report.sections
        or getattr(report, "user_properties", None)
        or getattr(report, "resiliency", None) is not None
    ):
        return  # the common case, a quiet passing test: nothing else that could hold a secret
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (path, line, "Skipped: reason")
        path, line, reason = longrepr
        report.longrepr = (path, line, scrub_text(str(reason), known))
    elif longrepr is not None:
        text = str(longrepr)
        clean = scrub_text(text, known)
        if clean != text:
            crash = getattr(longrepr, "reprcrash", None)
            report.longrepr = ScrubbedRepr(  # type: ignore[assignment]
                clean,
                ScrubbedCrash(
                    str(getattr(crash, "path", "")),
                    int(getattr(crash, "lineno", 0) or 0),
                    scrub_text(str(getattr(crash, "message", clean.splitlines()[0] if clean else "")), known),
                ),
            )
    report.sections = [(title, scrub_text(content, known)) for title, content in report.sections]
    if isinstance(report, pytest.TestReport):
        report.user_properties = [(name, scrub(value, known)) for name, value in report.user_properties]
        payload = getattr(report, "resiliency", None)
        if payload is not None:  # already scrubbed where it was built; this adds the controller's env
            report.resiliency = scrub(payload, known)  # type: ignore[attr-defined]


class ResultCollector:
    def __init__(
        self, config: pytest.Config, journal: Path | None, summary_md: Path | None = None, *, scrub_all: bool = False
    ) -> None:
        self.config = config
        self.scrub_all = scrub_all  # ini resiliency_scrub_all_reports: every report, not only ours
        self.journal = journal
        self.summary_md = summary_md
        self.entries: list[dict[str, Any]] = []
        self._by_nodeid: dict[str, dict[str, Any]] = {}
        # Reporting facts that are not part of the payload (and so not of the journal):
        # where each test is defined (annotations) and whether it carries the marker.
        self._locations: dict[str, tuple[str, int | None]] = {}
        self._unmarked: set[str] = set()
        self._junit: Any = None
        self._write_errors: list[str] = []  # a report file that could not be written after all

    def pytest_sessionstart(self) -> None:
        """pytest's JUnit writer exists by now (it is configured after this plugin)."""
        if not getattr(self.config.option, "xmlpath", None):  # no --junitxml: nothing to place
            return
        from .junit import JUnitFigures, logxml

        xml = logxml(self.config)
        if xml is not None:
            self._junit = JUnitFigures(xml, str(self.config.getini("resiliency_junit_figures")))

    @pytest.hookimpl(tryfirst=True)
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        # An experiment file's collection error is scrubbed where it is raised (ctk.collect).
        if report.failed and self.scrub_all:
            scrub_report(report)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """First of every reporter (terminal, JUnit, pytest-html): scrub ours, then collect.

        Ours: every phase of a resiliency test (the marker, an experiment file, a test using the
        plugin's fixtures), flagged on the report where it was made, so it works under xdist.
        Other tests' reports are left as pytest made them unless ``resiliency_scrub_all_reports``.
        """
        # Every report of ours carries ``resiliency_scrub`` (a payload only rides on ours); looked up
        # in ``__dict__`` because a plain report has neither and getattr would raise for each.
        if "resiliency_scrub" not in report.__dict__ and not self.scrub_all:
            return
        scrub_report(report)
        payload = getattr(report, "resiliency", None)
        if self._junit is not None:
            self._junit.handle(report, payload)
        if payload is None:
            return
        if report.when == "teardown":  # an aborted experiment: its teardown ERROR is the outcome
            entry = self._by_nodeid.get(report.nodeid)
            if entry is not None and report.failed:
                entry["pytest_outcome"] = "error"
            return
        if report.when != "call":
            return
        entry = {**payload, "pytest_outcome": report.outcome, "xfail": hasattr(report, "wasxfail")}
        self.entries.append(entry)
        self._by_nodeid[report.nodeid] = entry
        self._locations[report.nodeid] = (str(report.location[0]), report.location[1])
        if "resiliency" not in report.keywords:
            self._unmarked.add(report.nodeid)
        self.config.hook.pytest_resiliency_result(report=report, payload=payload)

    @pytest.hookimpl(tryfirst=True)  # before the terminal reporter formats the traceback (slow)
    def pytest_keyboard_interrupt(self) -> None:
        """Ctrl-C or SIGINT to the xdist controller: workers with an active fault revert it now.

        Here because this object lives exactly in the process that needs it (the serial process
        or the controller). Without it xdist lets a worker's running test, fault and all, go on
        for 5 s; workers without a fault are left to xdist as always.
        """
        if self.config.pluginmanager.has_plugin("dsession"):
            from ..interrupt import interrupt_workers
            from ..settings import journal_path

            interrupt_workers(journal_path())

    @property
    def experiments(self) -> list[dict[str, Any]]:
        """Entries of tests marked ``resiliency``: the experiments, with a budget to judge."""
        return [e for e in self.entries if e["nodeid"] not in self._unmarked]

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Runs before junitxml writes its file, so suite properties make it in.

        The paths were checked at start (``report.options``); should a file still fail (the disk
        filled, the directory went away), that is one line in the summary and a failed session,
        never a traceback that hides the other reports.
        """
        if not self.entries and self.journal is None and self.summary_md is None:
            return  # no resiliency test ran and no output was asked for: nothing to import or write
        from . import journal, junit, summary_md

        junit.add_suite_properties(self.config, self.entries)
        writes: list[tuple[str, Path | None, Callable[[Path], None]]] = [
            ("--resiliency-json", self.journal, lambda path: journal.write(path, self.entries)),
            (
                "--resiliency-summary-md",
                self.summary_md,
                lambda path: summary_md.write(path, self.experiments, unmarked=len(self._unmarked)),
            ),
        ]
        for flag, path, write in writes:
            if path is None:
                continue
            try:
                write(path)
            except OSError as exc:
                self._write_errors.append(f"{flag}: could not write {path} ({exc.strerror or exc})")
        if self._write_errors and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for error in self._write_errors:
            terminalreporter.write_line(f"ERROR: {error}", red=True, bold=True)
        if not self.entries:
            return
        from . import github, options, terminal

        verbose = self.config.get_verbosity() > 0
        experiments = self.experiments
        unmarked = [e for e in self.entries if e["nodeid"] in self._unmarked]
        # Tests that only used the experiment fixture (as the plugin's own tests do) are not
        # experiments: without -v they get no section of their own, only files they asked for.
        if experiments or verbose:
            cap = options.summary_width(self.config)
            full = self.config.get_terminal_writer().fullwidth
            width = min(full, cap) if cap else full
            terminalreporter.write_sep("=", "resiliency summary", fullwidth=width)
            if self.config.pluginmanager.has_plugin("dsession"):
                from ..settings import header_line  # under xdist the controller collected nothing to announce

                terminalreporter.write_line(header_line(self.config, len(self.entries)))
            for line in terminal.render(experiments, width=width, verbose=verbose, unmarked=unmarked):
                terminalreporter.write_line(line)
        failed = "\n".join(self._write_errors)
        if self.journal is not None and str(self.journal) not in failed:
            terminalreporter.write_line(f"resiliency journal: {self.journal}")
        if self.summary_md is not None and str(self.summary_md) not in failed:
            terminalreporter.write_line(f"resiliency summary: {self.summary_md}")
        if github.enabled(str(self.config.getini("resiliency_github_annotations")), os.environ):
            for command in github.commands(experiments, self._locations, self.config.rootpath, github.workspace_from()):
                terminalreporter.write_line(command)
