"""Resiliency figures in JUnit XML that validates in every family.

pytest writes a test's ``user_properties`` as ``<testcase><properties>``. The xunit2 schema
pytest validates itself against (``junit-10.xsd``, the Jenkins/Surefire schema) has no
such element, so under xunit2 (pytest's default) the per-test figures go to the test
case's ``<system-out>`` instead, one ``[[PROPERTY|name=value]]`` line each: the
"properties in test output" convention of the common JUnit format, shown as the test's
standard output by Jenkins, GitLab, Azure Pipelines and the GitHub test-report actions,
after a one-line human-readable headline. Under xunit1 (and ``legacy``) the figures stay
``<properties>``, as pytest's ``record_property`` writes them. The ini option
``resiliency_junit_figures`` overrides the choice. Suite-level figures are
``<testsuite><properties>``, valid in both families.

This reaches into pytest's ``LogXML`` (``_pytest.junitxml``); where its internals are not
as expected the figures stay as properties, so nothing is ever lost.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any

import pytest

PREFIX = "resiliency."
MODES = ("auto", "properties", "system-out", "both")
CAPTURED_TO_SYSTEM_OUT = ("system-out", "out-err", "all")
SECTION = "Captured stdout resiliency"


def suite_properties(entries: list[dict[str, Any]]) -> list[tuple[str, str]]:
    rtos = [e["summary"]["rto"] for e in entries if e["summary"]["rto"] is not None]
    lost = [e["summary"]["lost_writes"] for e in entries if e["summary"]["lost_writes"] is not None]
    unmeasured = sum(1 for e in entries if e["summary"]["rto_status"] not in ("recovered", "no fault"))
    props = [
        ("resiliency.tests", str(len(entries))),
        ("resiliency.breaches", str(sum(1 for e in entries if e["outcome"] == "breach"))),
        ("resiliency.aborted", str(sum(1 for e in entries if e["outcome"] == "aborted"))),
        ("resiliency.unrecovered", str(unmeasured)),
        ("resiliency.lost_writes_total", str(sum(lost))),
    ]
    if rtos:
        props.append(("resiliency.worst_rto_s", f"{max(rtos):.6g}"))
    return props


def logxml(config: pytest.Config) -> Any | None:
    """pytest's JUnit writer, or None without ``--junitxml`` (or if pytest moved it)."""
    try:
        from _pytest.junitxml import xml_key
    except ImportError:  # pragma: no cover - pytest moved it; the figures stay properties
        return None
    return config.stash.get(xml_key, None)


def add_suite_properties(config: pytest.Config, entries: list[dict[str, Any]]) -> None:
    """Attach to pytest's LogXML before it writes; a no-op without ``--junitxml``."""
    xml = logxml(config)
    if xml is None or not entries:
        return
    for name, value in suite_properties(entries):
        xml.add_global_property(name, value)


def placement(mode: str, family: str) -> tuple[bool, bool]:
    """``(keep <properties>, write <system-out>)`` for a ``resiliency_junit_figures`` mode."""
    value = (mode or "auto").strip().lower()
    if value not in MODES:
        raise ValueError(f"resiliency_junit_figures={mode!r}: expected one of {', '.join(MODES)}")
    if value == "auto":
        value = "properties" if family in ("xunit1", "legacy") else "system-out"
    return value in ("properties", "both"), value in ("system-out", "both")


def property_lines(properties: Iterable[tuple[str, Any]]) -> list[str]:
    """``[[PROPERTY|name=value]]``, one per line; a newline in a value would end it, so none survive."""
    return [f"[[PROPERTY|{name}={' '.join(str(value).split())}]]" for name, value in properties]


def parse_property_lines(text: str) -> dict[str, str]:
    """The inverse of :func:`property_lines`, for tests and for consumers in Python."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[[PROPERTY|") and line.endswith("]]") and "=" in line:
            name, _, value = line[len("[[PROPERTY|") : -2].partition("=")
            out[name] = value
    return out


def ours(report: pytest.TestReport) -> list[tuple[str, Any]]:
    return [(str(p[0]), p[1]) for p in report.user_properties if str(p[0]).startswith(PREFIX)]


class JUnitFigures:
    """Moves each resiliency test's figures to where its JUnit family allows them.

    Called from the collector's ``tryfirst`` ``pytest_runtest_logreport``, i.e. before
    LogXML sees the report: the properties are taken off the report, and at teardown
    (before LogXML closes the test case) written as the test case's standard output.
    """

    def __init__(self, xml: Any, mode: str) -> None:
        self.xml = xml
        writable = callable(getattr(xml, "node_reporter", None))
        keep, system_out = placement(mode, getattr(xml, "family", "xunit1"))
        self.keep_properties = keep or not writable  # never drop what cannot be written elsewhere
        self.system_out = system_out and writable
        # When pytest logs captured output it writes one <system-out> per test case: at
        # teardown, or (junit_log_passing_tests=false) with the failure at call. Joining it
        # there keeps a single element, which is the one consumers read.
        self.captured = getattr(xml, "logging", "no") in CAPTURED_TO_SYSTEM_OUT
        self.log_passing = bool(getattr(xml, "log_passing_tests", True))
        self._headlines: dict[tuple[str, Any], str] = {}

    def handle(self, report: pytest.TestReport, payload: dict[str, Any] | None) -> None:
        key = (report.nodeid, getattr(report, "node", None))
        if payload is not None and report.when == "call":
            self._headlines[key] = headline(payload)
        figures = ours(report)
        if not figures:
            return
        if not self.keep_properties:
            report.user_properties = [p for p in report.user_properties if not str(p[0]).startswith(PREFIX)]
        if not self.system_out or key not in self._headlines:
            return  # not wanted, or already written with the failure
        with_failure = self.captured and not self.log_passing and report.when == "call" and report.failed
        if report.when == "teardown" or with_failure:
            text = "\n".join([self._headlines.pop(key), *property_lines(figures)]) + "\n"
            if self.captured and (self.log_passing or with_failure):
                report.sections.append((SECTION, text))  # pytest writes it with the captured output
            else:
                self._write(report, text)

    def _write(self, report: pytest.TestReport, text: str) -> None:
        try:
            from _pytest.junitxml import bin_xml_escape

            element = ET.Element("system-out")
            element.text = bin_xml_escape(text)
            self.xml.node_reporter(report).append(element)
        except (ImportError, AttributeError):  # pragma: no cover - pytest changed; keep the properties instead
            report.user_properties = [*report.user_properties, *ours_from_text(text)]


def ours_from_text(text: str) -> list[tuple[str, str]]:
    return list(parse_property_lines(text).items())


def headline(payload: dict[str, Any]) -> str:
    """``resiliency: PASS · RTO 2.01s (±980ms) / 5s · RPO 0s (0 lost) / 0s · ...``, for a human reader."""
    from .terminal import HEADERS, row

    cells = row(payload)
    parts = [f"{name} {cell}" for name, cell in zip(HEADERS[1:5], cells[1:5], strict=True) if cell != "-"]
    line = f"resiliency: {cells[5]} · " + " · ".join(parts)
    if payload.get("verdict", {}).get("line"):
        line += f"\n{payload['verdict']['line']}"
    return line
