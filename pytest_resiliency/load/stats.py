"""What a load saw: live figures from the timeline, and locust's own final stats (its ``--json-file``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..measure import percentile
from ..timeline import Timeline
from .ingest import SOURCE, Ingest


def live_stats(timeline: Timeline, ingest: Ingest) -> dict[str, Any]:
    """Counts, error rate, rate and success latency percentiles (seconds) of the load's operations so far."""
    evidence = timeline.snapshot()
    try:
        sid = evidence.strings.index(SOURCE)
    except ValueError:
        sid = -1
    latencies: list[float] = []
    requests = failures = 0
    for src, ok, latency in zip(evidence.op_source, evidence.op_ok, evidence.op_latency, strict=True):
        if src != sid:
            continue
        requests += 1
        if ok:
            latencies.append(latency)
        else:
            failures += 1
    latencies.sort()
    span = (ingest.last_start - ingest.first_start) if ingest.first_start and ingest.last_start else 0.0
    return {
        "requests": requests,
        "failures": failures,
        "error_rate": failures / requests if requests else None,
        "rps": (requests - 1) / span if span > 0 else None,
        "p50": percentile(latencies, 0.50),
        "p95": percentile(latencies, 0.95),
        "p99": percentile(latencies, 0.99),
        "max": latencies[-1] if latencies else None,
        "writes": {s: ingest.writes.get(s, 0) for s in ("ok", "fail", "indeterminate")},
        "errors": dict(ingest.errors.most_common(20)),
        "dropped": evidence.dropped,
    }


def locust_stats(json_file: Path) -> list[dict[str, Any]]:
    """Locust's final per-endpoint stats (``[]`` when it wrote none), percentiles from its histogram."""
    try:
        raw = json.loads(json_file.read_text())
    except (OSError, ValueError):
        return []
    return [_summarise_entry(entry) for entry in raw if isinstance(entry, dict)] if isinstance(raw, list) else []


def _summarise_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """One endpoint of locust's JSON stats, percentiles from its response-time histogram."""
    histogram = entry.get("response_times") or {}
    points = sorted((float(k), int(v)) for k, v in histogram.items())
    total = sum(n for _, n in points)

    def pct(q: float) -> float | None:
        if not total:
            return None
        rank, seen = q * total, 0
        for value, n in points:
            seen += n
            if seen >= rank:
                return value
        return points[-1][0]

    requests = int(entry.get("num_requests") or 0)
    return {
        "name": entry.get("name"),
        "method": entry.get("method"),
        "num_requests": requests,
        "num_failures": int(entry.get("num_failures") or 0),
        "avg_ms": (entry.get("total_response_time") or 0) / requests if requests else None,
        "min_ms": entry.get("min_response_time"),
        "max_ms": entry.get("max_response_time"),
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
    }
