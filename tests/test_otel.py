"""OpenTelemetry: faults, episodes and the verdict as spans over OTLP/HTTP.

The receiver is a small ``http.server`` on loopback that decodes each export with
opentelemetry-proto (the collector's own message types), like a collector's OTLP/HTTP
receiver would; the spans are checked against the JSON journal of the same run.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from test_compare import SUITE, runpytest

pytest.importorskip(
    "opentelemetry.sdk", reason="the 'otel' extra is not installed (pip install pytest-resiliency[otel])"
)
trace_service = pytest.importorskip("opentelemetry.proto.collector.trace.v1.trace_service_pb2")

from pytest_resiliency.report import compare  # noqa: E402
from pytest_resiliency.report.otel import OtelError, traces_url  # noqa: E402


class Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.spans: list[dict[str, Any]] = []
        self.resources: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        request = trace_service.ExportTraceServiceRequest()
        request.ParseFromString(body)
        with self.server.lock:
            self.server.paths.append(self.path)
            for resource_spans in request.resource_spans:
                self.server.resources.append({a.key: _value(a.value) for a in resource_spans.resource.attributes})
                for scope in resource_spans.scope_spans:
                    for span in scope.spans:
                        self.server.spans.append(
                            {
                                "name": span.name,
                                "trace": span.trace_id.hex(),
                                "id": span.span_id.hex(),
                                "parent": span.parent_span_id.hex(),
                                "start": span.start_time_unix_nano / 1e9,
                                "end": span.end_time_unix_nano / 1e9,
                                "status": span.status.code,
                                "attributes": {a.key: _value(a.value) for a in span.attributes},
                                "events": [e.name for e in span.events],
                            }
                        )
        reply = trace_service.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


STATUS_ERROR = 2


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_spans_for_faults_episodes_and_verdicts(
    pytester: pytest.Pytester, receiver: Receiver, workers: list[str]
) -> None:
    pytester.makepyfile(test_suite=SUITE, test_plain="def test_plain():\n    pass\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OUTAGE", "0.6")
        mp.setenv("BUDGET", "300ms")
        mp.setenv("OTEL_SERVICE_NAME", "orders-resiliency")
        result = runpytest(
            pytester, f"--resiliency-otlp-endpoint={receiver.url}", "--resiliency-json=journal.json", *workers
        )
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([f"resiliency traces: 2 test(s) flushed to {receiver.url}/v1/traces"])
    assert set(receiver.paths) == {"/v1/traces"}
    assert {r.get("service.name") for r in receiver.resources} == {"orders-resiliency"}

    spans = receiver.spans
    by_name = {s["name"]: s for s in spans}
    session = by_name["pytest-resiliency session"]
    assert session["attributes"]["resiliency.tests"] == 2 and session["parent"] == ""
    assert {s["trace"] for s in spans} == {session["trace"]}  # one trace per run
    journal = {t["nodeid"]: t for t in json.loads((pytester.path / "journal.json").read_text())["tests"]}

    for nodeid, entry in journal.items():
        test = by_name[f"resiliency {nodeid}"]
        assert test["parent"] == session["id"]
        attrs = test["attributes"]
        assert attrs["resiliency.rto_s"] == pytest.approx(entry["summary"]["rto"])
        uncertainty = compare.uncertainty(entry)  # rto_uncertainty, or resolution in older payloads
        assert uncertainty is not None and attrs["resiliency.rto_uncertainty_s"] == pytest.approx(uncertainty)
        assert attrs["resiliency.budget.rto_s"] == pytest.approx(entry["budget"]["rto"])
        assert attrs["resiliency.outcome"] == entry["outcome"]
        assert "resiliency.lost_writes" not in attrs  # not verified: left out, never a fake 0
        children = [s for s in spans if s["parent"] == test["id"]]
        names = sorted(s["name"] for s in children)
        assert names == ["episode 1: recovered", "fault blip", f"verdict {entry['outcome'].upper()}"]
        fault = next(s for s in children if s["name"] == "fault blip")
        assert fault["start"] == pytest.approx(entry["faults"][0]["injected_at"], abs=1e-6)
        assert fault["end"] == pytest.approx(entry["faults"][0]["reverted_at"], abs=1e-6)
        assert fault["attributes"]["resiliency.fault.kind"] == "custom"
        episode = next(s for s in children if s["name"].startswith("episode"))
        assert episode["attributes"]["resiliency.episode.rto_s"] == pytest.approx(entry["summary"]["rto"])
        assert episode["start"] == pytest.approx(entry["measurement"]["episodes"][0]["t_inject"], abs=1e-6)
        assert episode["end"] - episode["start"] == pytest.approx(entry["summary"]["rto"], abs=0.01)
        verdict = next(s for s in children if s["name"].startswith("verdict"))
        breached = entry["outcome"] == "breach"
        assert verdict["attributes"]["resiliency.verdict.passed"] is (not breached)
        assert (test["status"] == STATUS_ERROR) is breached and (verdict["status"] == STATUS_ERROR) is breached
        if breached:
            assert verdict["attributes"]["resiliency.verdict.breached"] == ["rto"]
            assert verdict["events"] == ["breach"]
            assert verdict["attributes"]["resiliency.verdict.line"].startswith("RTO ")
    assert not any("test_plain" in s["name"] for s in spans)  # only resiliency tests are traced


def test_bad_endpoint_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = runpytest(pytester, "--resiliency-otlp-endpoint=collector:4318")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*must be an http:// or https:// URL of an OTLP/HTTP receiver*"])


def test_traces_url() -> None:
    assert traces_url("http://c:4318") == "http://c:4318/v1/traces"
    assert traces_url("http://c:4318/") == "http://c:4318/v1/traces"
    assert traces_url("https://c/otlp/v1/traces") == "https://c/otlp/v1/traces"
    with pytest.raises(OtelError, match="'ftp://c': must be an http"):
        traces_url("ftp://c")
