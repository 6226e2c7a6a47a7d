"""``--resiliency-compare=BASELINE.json``: the regression gate inside a run.

The convention pytest-benchmark's users know (``--benchmark-compare-fail``): the run's own
results are compared with a baseline journal at the end of the session; a regression prints
the table and turns a passing exit status into 1 (tests failed). Registered only on the
process that writes reports (serial run or xdist controller), which sees every result
through ``pytest_resiliency_result``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from . import compare
from .journal import document


class RegressionGate:
    def __init__(self, baseline: Path, thresholds: compare.Thresholds, summary_md: Path | None = None) -> None:
        self.baseline_path = baseline
        self.baseline = compare.load(baseline)  # a bad baseline is a usage error before anything runs
        self.thresholds = thresholds
        self.summary_md = summary_md
        self.entries: list[dict[str, Any]] = []
        self.result: compare.Comparison | None = None

    def pytest_resiliency_result(self, report: pytest.TestReport, payload: dict[str, Any]) -> None:
        self.entries.append({**payload, "pytest_outcome": report.outcome})

    @pytest.hookimpl(trylast=True)  # after the collector has written the summary it appends to
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.result = compare.compare(
            self.baseline, document(self.entries), self.thresholds, str(self.baseline_path), "this run"
        )
        if self.result.regressions and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if self.summary_md is not None:
            compare.append_markdown(self.summary_md, self.result)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.result is None:
            return
        terminalreporter.write_sep("=", "resiliency regression gate", red=bool(self.result.regressions))
        for line in compare.text_lines(self.result)[1:]:
            terminalreporter.write_line(line)
