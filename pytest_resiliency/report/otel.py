"""OpenTelemetry export (``--resiliency-otlp-endpoint URL``; extra ``otel``).

One trace per pytest session: a ``pytest-resiliency session`` span, under it one span per
resiliency test, and under each test its faults (injected -> reverted), its recovery
episodes (t_inject -> recovered) and its verdict, with the figures as attributes
(``resiliency.rto_s``, ``resiliency.rto_uncertainty_s``, ``resiliency.lost_writes``,
``resiliency.budget.rto_s``...). Spans are built from the payload after each test, with the
experiment's own timestamps, in the process that writes reports (serial run or xdist
controller), and sent over OTLP/HTTP (protobuf) in batches; the batch is flushed at the end
of the session. The global tracer provider is left alone: a suite's own telemetry is not
touched. ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES`` and ``OTEL_EXPORTER_OTLP_HEADERS``
are honoured.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

import pytest

from .compare import uncertainty as stated_uncertainty

DEFAULT_SERVICE = "pytest-resiliency"
TRACES_PATH = "v1/traces"
FLUSH_TIMEOUT_MS = 10_000


class OtelError(ValueError):
    """Bad endpoint or the extra is missing; the message says what to do."""


def traces_url(endpoint: str) -> str:
    """A base URL (``http://collector:4318``) gets ``/v1/traces``, as OTEL_EXPORTER_OTLP_ENDPOINT does."""
    parts = urllib.parse.urlsplit(endpoint.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OtelError(
            f"--resiliency-otlp-endpoint {endpoint!r}: must be an http:// or https:// URL of an OTLP/HTTP "
            "receiver, such as http://127.0.0.1:4318"
        )
    if parts.path in ("", "/"):
        return urllib.parse.urlunsplit(parts._replace(path="/" + TRACES_PATH))
    return endpoint.strip()


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _attributes(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    """OTel attribute values are str/bool/int/float: None is left out, the rest becomes JSON text."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if not isinstance(value, (str, bool, int, float)):
            value = json.dumps(value, sort_keys=True, default=str)
        out[f"{prefix}{key}"] = value
    return out


def test_attributes(payload: dict[str, Any]) -> dict[str, Any]:
    s, b = payload["summary"], payload["budget"]
    uncertainty = stated_uncertainty(payload)
    figures = {
        "nodeid": payload["nodeid"],
        "outcome": payload["outcome"],
        "rto_status": s.get("rto_status"),
        "rto_s": s.get("rto"),
        "rto_uncertainty_s": uncertainty,
        "rpo_s": s.get("rpo"),
        "lost_writes": s.get("lost_writes"),
        "error_rate": s.get("error_rate"),
        "p99_s": s.get("p99"),
        "failed_operations": s.get("failed_operations"),
        "operations": s.get("operations"),
    }
    budget = {
        "rto_s": b.get("rto"),
        "rpo_s": b.get("rpo"),
        "rpo_writes": b.get("rpo_writes"),
        "error_rate": b.get("error_rate"),
        "p99_s": b.get("p99"),
        "alert_within_s": b.get("alert_within"),
        "disruption": b.get("disruption"),
        "tier": b.get("tier"),
    }
    return {**_attributes("resiliency.", figures), **_attributes("resiliency.budget.", budget)}


class OtelExporter:
    """Registered by the plugin when an endpoint is configured; reads only payloads."""

    def __init__(self, endpoint: str) -> None:
        url = traces_url(endpoint)
        try:
            from opentelemetry import trace
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError as exc:
            raise OtelError(
                f"--resiliency-otlp-endpoint needs OpenTelemetry ({exc.name} is missing): "
                "pip install 'pytest-resiliency[otel]'"
            ) from None
        from .. import __name__ as package

        self.url = url
        self._trace = trace
        resource = Resource.create({"service.name": DEFAULT_SERVICE}).merge(Resource.create())
        self.provider = TracerProvider(resource=resource)
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
        self.tracer = self.provider.get_tracer(package)
        self.session = self.tracer.start_span("pytest-resiliency session", start_time=time.time_ns())
        self.tests = 0

    def pytest_resiliency_result(self, report: pytest.TestReport, payload: dict[str, Any]) -> None:
        self.export(payload, report.outcome)

    def export(self, payload: dict[str, Any], pytest_outcome: str | None = None) -> None:
        trace = self._trace
        Status, StatusCode = trace.Status, trace.StatusCode
        started, finished = payload["started_at"], payload["finished_at"]
        parent = trace.set_span_in_context(self.session)
        attributes = test_attributes(payload)
        if pytest_outcome:
            attributes["test.outcome"] = pytest_outcome
        test = self.tracer.start_span(
            f"resiliency {payload['nodeid']}", context=parent, start_time=_ns(started), attributes=attributes
        )
        inside = trace.set_span_in_context(test)
        for fault in payload.get("faults") or []:
            injected = fault.get("injected_at") or started
            span = self.tracer.start_span(
                f"fault {fault.get('name') or fault.get('kind')}",
                context=inside,
                start_time=_ns(injected),
                attributes=_attributes(
                    "resiliency.fault.",
                    {k: fault.get(k) for k in ("kind", "name", "description", "target", "params", "error")},
                ),
            )
            if fault.get("error"):
                span.set_status(Status(StatusCode.ERROR, str(fault["error"])))
            span.end(end_time=_ns(fault.get("reverted_at") or finished))
        for index, episode in enumerate((payload.get("measurement") or {}).get("episodes") or []):
            t_inject = episode.get("t_inject") or started
            end = episode.get("recovery_by") or episode.get("t_recovered") or episode.get("end") or finished
            span = self.tracer.start_span(
                f"episode {index + 1}: {episode.get('status')}",
                context=inside,
                start_time=_ns(t_inject),
                attributes=_attributes(
                    "resiliency.episode.",
                    {
                        "status": episode.get("status"),
                        "rto_s": episode.get("rto"),
                        "uncertainty_s": episode.get("uncertainty")
                        if episode.get("uncertainty") is not None
                        else episode.get("resolution"),
                        "detection_delay_s": episode.get("detection_delay"),
                        "outage_s": episode.get("outage"),
                        "longest_gap_s": episode.get("longest_gap"),
                        "failed_operations": episode.get("failed"),
                        "operations": episode.get("operations"),
                        "faults": episode.get("faults"),
                    },
                ),
            )
            if episode.get("status") != "recovered":
                span.set_status(Status(StatusCode.ERROR, str(episode.get("status"))))
            span.end(end_time=_ns(max(end, t_inject)))
        verdict = payload.get("verdict") or {}
        span = self.tracer.start_span(
            f"verdict {str(payload['outcome']).upper()}",
            context=inside,
            start_time=_ns(finished),
            attributes={
                **attributes,
                **_attributes(
                    "resiliency.verdict.",
                    {"passed": verdict.get("passed"), "line": verdict.get("line") or None},
                ),
                "resiliency.verdict.breached": [str(b.get("nfr")) for b in verdict.get("breaches") or []],
            },
        )
        for breach in verdict.get("breaches") or []:
            span.add_event("breach", attributes=_attributes("resiliency.breach.", breach), timestamp=_ns(finished))
        failed = payload["outcome"] != "pass"
        for each in (span, test):
            if failed:
                each.set_status(Status(StatusCode.ERROR, verdict.get("line") or str(payload["outcome"])))
        span.end(end_time=_ns(finished))
        test.end(end_time=_ns(finished))
        self.tests += 1

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        self.session.set_attribute("resiliency.tests", self.tests)
        self.session.end()
        self.flushed = self.provider.force_flush(FLUSH_TIMEOUT_MS)
        self.provider.shutdown()

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.tests:
            state = "flushed" if getattr(self, "flushed", False) else "NOT flushed in time (see the log)"
            terminalreporter.write_line(f"resiliency traces: {self.tests} test(s) {state} to {self.url}")
