"""Options and wiring of the beyond-one-run integrations: regression gate, Allure, OpenTelemetry.

Listed in ``plugin.pytest_plugins``; imports nothing but pytest at start-up. Each part is
registered only when asked for (``--resiliency-compare``, ``--alluredir`` with allure-pytest,
``--resiliency-otlp-endpoint``), only where reports are written (serial run or xdist
controller; Allure's in every process, since Allure writes per test), and acts only on
resiliency tests, so a suite that uses none of them is unchanged.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("resiliency")
    group.addoption(
        "--resiliency-compare",
        metavar="BASELINE.json",
        default=None,
        help="compare this run with a baseline journal; a figure worse beyond the threshold and its "
        "uncertainty fails the session (exit 1)",
    )
    group.addoption(
        "--resiliency-max-regression",
        metavar="SPEC",
        action="append",
        default=None,
        help="how much worse a figure may get before --resiliency-compare fails: 20%% (default, every figure) "
        "or FIGURE:VALUE (rto:10%%, p99:off, lost_writes:0, p99:50ms, error_rate:0.01); repeatable",
    )
    group.addoption(
        "--resiliency-otlp-endpoint",
        metavar="URL",
        default=None,
        help="export faults, episodes and verdicts as OpenTelemetry spans over OTLP/HTTP to URL "
        "(e.g. http://127.0.0.1:4318); needs the 'otel' extra",
    )
    parser.addini("resiliency_otlp_endpoint", "OTLP/HTTP endpoint for resiliency spans (the command line wins)")


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.has_plugin("allure_pytest") and getattr(config.option, "allure_report_dir", None):
        from .allure import AllureBridge

        config.pluginmanager.register(AllureBridge(), "resiliency-allure")
    if hasattr(config, "workerinput"):
        return
    baseline = config.getoption("resiliency_compare")
    thresholds = config.getoption("resiliency_max_regression")
    if thresholds and not baseline:
        raise pytest.UsageError("--resiliency-max-regression needs --resiliency-compare=BASELINE.json")
    if baseline:
        from .compare import CompareError, parse_thresholds
        from .gate import RegressionGate

        summary_md = config.getoption("resiliency_summary_md", None)
        summary_path = Path(summary_md).resolve() if summary_md else None
        try:
            gate = RegressionGate(Path(baseline).resolve(), parse_thresholds(thresholds), summary_path)
        except CompareError as exc:
            raise pytest.UsageError(f"--resiliency-compare: {exc}") from None
        config.pluginmanager.register(gate, "resiliency-compare")
    endpoint = config.getoption("resiliency_otlp_endpoint") or config.getini("resiliency_otlp_endpoint")
    if endpoint:
        from .otel import OtelError, OtelExporter

        try:
            exporter = OtelExporter(str(endpoint))
        except OtelError as exc:
            raise pytest.UsageError(str(exc)) from None
        config.pluginmanager.register(exporter, "resiliency-otel")
