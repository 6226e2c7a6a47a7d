"""Collects payloads where reports are written (the serial process or the xdist controller).

Registered as a plugin object by ``plugin.pytest_configure`` so it has its config at hand,
like pytest's own LogXML. Workers never register it: their reports, payload included,
travel to the controller and arrive here through ``pytest_runtest_logreport``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


class ResultCollector:
    def __init__(self, config: pytest.Config, journal: Path | None, summary_md: Path | None = None) -> None:
        self.config = config
        self.journal = journal
        self.summary_md = summary_md
        self.entries: list[dict[str, Any]] = []
        self._by_nodeid: dict[str, dict[str, Any]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        payload = getattr(report, "resiliency", None)
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
        self.config.hook.pytest_resiliency_result(report=report, payload=payload)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self) -> None:
        """Runs before junitxml writes its file, so suite properties make it in."""
        from . import journal, junit

        junit.add_suite_properties(self.config, self.entries)
        if self.journal is not None:
            journal.write(self.journal, self.entries)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.entries:
            return
        from . import terminal

        terminalreporter.write_sep("=", "resiliency summary")
        for line in terminal.table(self.entries):
            terminalreporter.write_line(line)
        if self.journal is not None:
            terminalreporter.write_line(f"resiliency journal: {self.journal}")
