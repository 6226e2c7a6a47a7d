"""Report building blocks without pytest in the loop: series, chart, cells, scorecard, schema, secrets."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_resiliency import faults
from pytest_resiliency.budget import Budget, Criteria, format_duration
from pytest_resiliency.experiment import Experiment
from pytest_resiliency.report import chart, html, journal_schema, payload, series, summary_md
from pytest_resiliency.report.secrets import REDACTED, env_secrets, scrub, scrub_text
from pytest_resiliency.verdict import judge

DOCS = Path(__file__).resolve().parent.parent / "docs"


def synthetic_experiment(
    ops: int = 2000, seconds: float = 20.0, outage: tuple[float, float] = (8.0, 11.0), budget: Budget | None = None
) -> Experiment:
    """An experiment whose evidence is ``ops`` operations over ``seconds``, failing in ``outage``.

    The fault is a real ``faults.custom`` (it does nothing); its record is moved onto the
    synthetic clock so the timeline is consistent.
    """
    exp = Experiment("tests/x.py::test_synthetic", budget or Budget(rto=1.0), Criteria(successes=5, window=0.5))
    t0 = time.time() - seconds - 1
    fault = faults.custom(lambda: None, lambda: None, name="break", target="127.0.0.1:1")
    exp.inject(fault)
    fault.revert()
    assert fault.record is not None
    fault.record.injected_at = t0 + outage[0]
    fault.record.reverted_at = t0 + outage[1]
    rng = random.Random(7)
    rows = []
    for i in range(ops):
        start = t0 + i * seconds / ops
        ok = not (t0 + outage[0] <= start < t0 + outage[1])
        rows.append((start, rng.uniform(0.001, 0.010) if ok else 0.5, ok, "GET /", "load", None if ok else "HTTP 503"))
    exp.timeline.add_operations(rows)
    for i in range(10):
        exp.record_write(f"k{i}", t0 + 7 + i * 0.05, t0 + 7 + i * 0.05 + 0.01, "ok")
    exp.verify_writes(lambda keys: [k for k in keys if k not in ("k8", "k9")])
    return exp


def build(exp: Experiment) -> dict[str, Any]:
    m = exp.measure()
    v = judge(m, exp.budget)
    return payload.build(exp, m, v, payload.PASS if v.passed else payload.BREACH, [])


# -- series -------------------------------------------------------------------------


def test_series_of_a_ten_minute_100k_request_experiment_is_bounded_and_conserves_counts() -> None:
    exp = synthetic_experiment(ops=100_000, seconds=600.0, outage=(300.0, 312.0))
    p = build(exp)
    s = p["series"]
    assert s["buckets"] <= series.MAX_BUCKETS
    assert s["bucket"] == 5.0  # 600 s / 120 buckets, a round width
    assert sum(s["ok"]) + sum(s["fail"]) == 100_000
    assert sum(s["fail"]) == p["measurement"]["fault_window"]["failed"]
    assert len(json.dumps(p)) < 20_000, "the payload must not grow with the evidence"
    svg = chart.render(p)
    assert len(svg) < 60_000
    assert svg.count('class="failed-bucket"') in (3, 4)  # 12 s of outage in 5 s buckets


def test_series_latency_percentiles_and_lost_writes_are_placed_in_their_bucket() -> None:
    exp = synthetic_experiment(ops=2000, seconds=20.0)
    s = build(exp)["series"]
    assert s["bucket"] == 0.2
    outage_bucket = s["fail"].index(max(s["fail"]))
    assert s["p99"][outage_bucket] is None or s["p99"][outage_bucket] <= 0.010
    assert all(p50 is None or 0.001 <= p50 <= 0.010 for p50 in s["p50"])
    assert s["lost_total"] == 2
    assert [round(x, 2) for x in s["lost_writes"]] == [7.41, 7.46]


@pytest.mark.parametrize("seed", range(6))
def test_numpy_and_pure_series_are_identical(seed: int) -> None:
    pytest.importorskip("numpy")
    rng = random.Random(seed)
    exp = synthetic_experiment(ops=rng.randint(50, 3000), seconds=rng.uniform(0.5, 900.0))
    evidence = exp.timeline.snapshot()
    start, end = series.span_of(evidence, exp.started_at, time.time())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(series, "NUMPY_FROM", 10**12)
        pure = series.bucketed(evidence, start, end), series.span_of(evidence, 0.0, 1.0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(series, "NUMPY_FROM", 0)
        fast = series.bucketed(evidence, start, end), series.span_of(evidence, 0.0, 1.0)
    assert fast == pure


def test_bucket_width_rejects_nonsense_and_grows_past_the_table() -> None:
    with pytest.raises(ValueError, match="max_buckets=0 must be >= 1"):
        series.bucket_width(10.0, 0)
    assert series.bucket_width(0.5) == 0.01
    assert series.bucket_width(10 * 24 * 3600.0) == 7200.0


# -- chart and html -----------------------------------------------------------------


def test_chart_marks_fault_window_recovery_budget_and_lost_writes() -> None:
    p = build(synthetic_experiment())
    svg = chart.render(p)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert 'class="fault-window"' in svg and "fault: break (3.00s)" in svg
    assert "first failure +" in svg and "RTO budget 1.00s" in svg
    assert "recovered, RTO 3.0" in svg and "&gt; budget 1.00s" in svg  # breached: said on the chart
    assert svg.count('class="lost-write"') == 2 and "2 lost writes" in svg


def test_chart_draws_the_recovery_bracket_and_its_uncertainty() -> None:
    p = build(synthetic_experiment())
    (episode,) = p["measurement"]["episodes"]
    assert episode["recovery_from"] < episode["t_recovered"] == episode["recovery_by"]
    svg = chart.render(p)
    assert svg.count('class="recovery-bracket"') == 1
    assert f"(±{format_duration(episode['uncertainty'])})" in svg


def test_the_journal_keeps_every_lost_key_and_the_chart_summarises() -> None:
    exp = synthetic_experiment()
    t0 = time.time() - 30
    for i in range(300):
        exp.record_write(f"gone-{i:03}", t0 + i * 0.01, t0 + i * 0.01 + 0.001, "ok")
    exp.verify_writes(lambda keys: [k for k in keys if not k.startswith("gone-")])
    p = build(exp)
    ledger = p["measurement"]["ledger"]
    assert ledger["lost"] == 300 and len(ledger["lost_keys"]) == 300
    assert set(ledger["lost_keys"]) == {f"gone-{i:03}" for i in range(300)}
    assert p["series"]["lost_total"] == 300 and len(p["series"]["lost_writes"]) == series.LOST_MARKS_SHOWN
    assert "300 lost writes (200 shown)" in chart.render(p)


def test_a_bucket_without_successes_is_a_gap_in_the_latency_chart_not_a_zero() -> None:
    p = build(synthetic_experiment(ops=2000, seconds=20.0, outage=(8.0, 11.0)))
    p99 = p["series"]["p99"]
    empty = [i for i, (ok, v) in enumerate(zip(p["series"]["ok"], p99, strict=True)) if ok == 0]
    assert empty and all(p99[i] is None for i in empty)
    svg = chart.render(p)
    assert svg.count(f'stroke="{chart.P99_COLOUR}"') >= 2  # the p99 line is broken by the outage


def test_chart_of_an_experiment_without_evidence_says_so() -> None:
    exp = Experiment("t.py::test_empty", Budget(rto=1.0))
    svg = chart.render(build(exp))
    assert "no operations were observed" in svg


def test_chart_escapes_names() -> None:
    p = build(synthetic_experiment())
    p["faults"][0]["name"] = "<script>alert(1)</script>"
    assert "<script>" not in chart.render(p) and "&lt;script&gt;" in chart.render(p)


def test_sort_keys_order_cells_numerically_as_strings() -> None:
    """pytest-html compares the cells' inner HTML as strings: the hidden key must make that numeric."""

    def entry(rto: float | None, status: str = "recovered") -> dict[str, Any]:
        return {"summary": {"rto": rto, "rto_status": status}, "budget": {"rto": None}}

    cells = [
        html.rto_cell(entry(0.412)),
        html.rto_cell(entry(7.41)),
        html.rto_cell(entry(None, "not recovered")),
        html.rto_cell(entry(12.0)),
        html.rto_cell(None),
    ]
    ordered = sorted(cells)
    assert ordered == [cells[4], cells[0], cells[1], cells[3], cells[2]]


def test_nfr_table_names_breaches_and_ledger() -> None:
    p = build(synthetic_experiment(budget=Budget(rto=1.0, rpo=0.0)))
    rows = {r[0]: r for r in html.nfr_rows(p)}
    assert rows["RTO"][3] == "BREACH" and rows["RTO"][4].startswith("recovered between +")
    assert "(±" in rows["RTO"][4]
    assert rows["RPO (time)"][3] == "BREACH" and "2 lost" in rows["RPO (time)"][4]
    assert rows["error rate"][3] == "-"


# -- scorecard ----------------------------------------------------------------------


def test_summary_markdown_escapes_pipes_and_appends(tmp_path: Path) -> None:
    p = build(synthetic_experiment())
    p["nodeid"] = "t.py::test_x[a|b]"
    entry = {**p, "pytest_outcome": "failed", "xfail": False}
    text = summary_md.render([entry])
    assert "`t.py::test_x[a\\|b]`" in text
    row = next(line for line in text.splitlines() if "test_x" in line and line.startswith("|"))
    assert row.count(" | ") == len(summary_md.HEADERS) - 1
    target = tmp_path / "step_summary.md"
    target.write_text("# earlier step\n", encoding="utf-8")
    summary_md.write(target, [entry])
    summary_md.write(target, [entry])
    written = target.read_text(encoding="utf-8")
    assert written.startswith("# earlier step\n")
    assert written.count("## Resiliency scorecard") == 2


def test_summary_markdown_of_an_empty_run() -> None:
    assert "No resiliency experiment ran." in summary_md.render([])


# -- journal schema -----------------------------------------------------------------


def test_documented_schema_is_the_one_in_code() -> None:
    documented = json.loads((DOCS / "journal-schema.json").read_text(encoding="utf-8"))
    assert documented == json.loads(json.dumps(journal_schema.SCHEMA))


def test_schema_checker_accepts_a_real_entry_and_names_what_is_wrong() -> None:
    p = build(synthetic_experiment())
    doc: dict[str, Any] = {
        "schema": "pytest-resiliency/journal",
        "version": 2,
        "created": "2026-01-01T00:00:00+00:00",
        "tests": [{**p, "pytest_outcome": "failed", "xfail": False}],
    }
    assert journal_schema.validate(json.loads(json.dumps(doc))) == []
    del doc["tests"][0]["summary"]["rto"]
    doc["tests"][0]["outcome"] = "maybe"
    doc["tests"][0]["series"]["ok"][0] = -1
    doc["version"] = 1
    errors = journal_schema.validate(doc)
    assert "$.version: 1 is not 2" in errors
    assert "$.tests[0].summary: missing 'rto'" in errors
    assert any(e.startswith("$.tests[0].outcome: 'maybe' is not one of") for e in errors)
    assert "$.tests[0].series.ok[0]: -1 < minimum 0" in errors


# -- secrets ------------------------------------------------------------------------

FAKE_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzFAKEKEY1"


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        ("GET http://admin:hunter2pw@127.0.0.1:8080/x", "hunter2pw"),
        ("GET /orders?user=bob&password=s3cr3tpw&x=1", "s3cr3tpw"),
        ("GET /orders?token=tok123456&x=1", "tok123456"),
        ("key AKIAIOSFODNN7FAKE001 in a log", "AKIAIOSFODNN7FAKE001"),
        ("temporary ASIAIOSFODNN7FAKE002", "ASIAIOSFODNN7FAKE002"),
        (f"AWS_SECRET_ACCESS_KEY={FAKE_SECRET_KEY}", FAKE_SECRET_KEY),
        (f'{{"aws_secret_access_key": "{FAKE_SECRET_KEY}"}}', FAKE_SECRET_KEY),
        ("{'Authorization': 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig', 'Host': 'x'}", "eyJhbGciOiJIUzI1NiJ9"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==\nnext", "dXNlcjpwYXNzd29yZA"),
        ("session IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ end", "IQoJb3JpZ2luX2VjEJr"),
        ("db_password = 'two words'", "two words"),
    ],
)
def test_scrub_text_removes_secret(text: str, leaked: str) -> None:
    clean = scrub_text(text, [])
    assert leaked not in clean
    assert REDACTED in clean
    assert scrub_text(clean, []) == clean  # idempotent: the controller scrubs again


def test_scrub_keeps_ordinary_text() -> None:
    line = "RTO 1.52s > budget 1s (first failure +30ms, 70 failed operations) http GET http://127.0.0.1:8080/health"
    assert scrub_text(line, []) == line


def test_scrub_payload_by_key_by_pattern_and_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_DB_PASSWORD", "plantedpw-0042")
    monkeypatch.setenv("SHORT_TOKEN", "1")  # too short to hunt for: "1" would redact every number
    assert "plantedpw-0042" in env_secrets() and "1" not in env_secrets()
    value = {
        "params": {"password": "x1", "api_key": 12345, "enabled_token": True, "nested": {"secret": "y2"}},
        "attachments": {"logs:db": "connecting with plantedpw-0042 as user"},
        "n": 1.5,
        "list": ["ok", "http://u:p4ss@h/"],
    }
    out = scrub(value)
    assert out["params"] == {
        "password": REDACTED,
        "api_key": REDACTED,
        "enabled_token": True,
        "nested": {"secret": REDACTED},
    }
    assert out["attachments"]["logs:db"] == f"connecting with {REDACTED} as user"
    assert out["n"] == 1.5 and out["list"] == ["ok", f"http://u:{REDACTED}@h/"]
