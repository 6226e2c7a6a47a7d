"""The JSON Schema of the journal (``--resiliency-json``) and a small checker for it.

The schema is kept here, in code, so the wheel carries it and the checker and the
documentation cannot drift: ``docs/journal-schema.json`` is this dict dumped, and a test
fails when they differ. The checker implements the subset of JSON Schema the schema uses
(``type``, ``required``, ``properties``, ``additionalProperties``, ``items``, ``enum``,
``const``, ``minimum``), so validating a journal needs no extra dependency.
"""

from __future__ import annotations

from typing import Any

from .journal import JOURNAL_SCHEMA, JOURNAL_VERSION

NUMBER_OR_NULL: dict[str, Any] = {"type": ["number", "null"]}
SECONDS = {"type": ["number", "null"], "minimum": 0}
TIME = {"type": "number", "description": "wall-clock seconds since the epoch (time.time())"}
OUTCOMES = ["pass", "breach", "aborted", "error"]
STATUSES = ["recovered", "not recovered", "no evidence", "no fault"]


def _object(properties: dict[str, Any], *, closed: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": sorted(properties),
        "properties": properties,
        "additionalProperties": not closed,
        **extra,
    }


WINDOW = _object(
    {
        "start": NUMBER_OR_NULL,
        "end": NUMBER_OR_NULL,
        "operations": {"type": "integer", "minimum": 0},
        "failed": {"type": "integer", "minimum": 0},
        "error_rate": NUMBER_OR_NULL,
        "p50": SECONDS,
        "p95": SECONDS,
        "p99": SECONDS,
    }
)

EPISODE = _object(
    {
        "t_inject": TIME,
        "faults": {"type": "array", "items": {"type": "string"}},
        "end": NUMBER_OR_NULL,
        "operations": {"type": "integer", "minimum": 0},
        "failed": {"type": "integer", "minimum": 0},
        "t_first_fail": NUMBER_OR_NULL,
        "recovery_from": {
            "type": ["number", "null"],
            "description": "lower end of the recovery bracket: send time of the last failure (latest evidence of down)",
        },
        "t_recovered": {
            "type": ["number", "null"],
            "description": "upper end of the bracket: completion of the first success sent after the last failure",
        },
        "recovery_by": {"type": ["number", "null"], "description": "the same as t_recovered"},
        "rto": {**SECONDS, "description": "t_recovered - t_inject: the judged upper end"},
        "uncertainty": {**SECONDS, "description": "bracket width (+ clock uncertainty of remote load hosts)"},
        "detection_delay": SECONDS,
        "outage": SECONDS,
        "longest_gap": SECONDS,
        "timeout": {"type": "number", "minimum": 0},
        "status": {"enum": STATUSES},
    }
)

LEDGER = _object(
    {
        "written": {"type": "integer", "minimum": 0},
        "acknowledged": {"type": "integer", "minimum": 0},
        "failed": {"type": "integer", "minimum": 0},
        "indeterminate": {"type": "integer", "minimum": 0},
        "lost": {"type": "integer", "minimum": 0},
        "recovered": {"type": "integer", "minimum": 0},
        "unexpected": {"type": "integer", "minimum": 0},
        "failed_present": {"type": "integer", "minimum": 0},
        "lost_keys": {
            "type": "array",
            "items": {"type": "string"},
            "description": "every lost key, ordered by acknowledgement",
        },
        "rpo": SECONDS,
    }
)

CRITERIA = _object(
    {
        "successes": {"type": "integer", "minimum": 1},
        "window": {"type": "number", "minimum": 0},
        "timeout": {"type": "number", "minimum": 0},
    }
)

ENTRY = _object(
    {
        "schema": {"const": 2, "description": "payload schema version"},
        "nodeid": {"type": "string"},
        "pytest_outcome": {"enum": ["passed", "failed", "skipped", "error"]},
        "xfail": {"type": "boolean"},
        "started_at": TIME,
        "finished_at": TIME,
        "outcome": {"enum": OUTCOMES, "description": "the resiliency verdict, independent of xfail/skip"},
        "aborted": {"type": ["string", "null"], "description": "why a stop condition aborted the experiment"},
        "errors": {"type": "array", "items": {"type": "string"}, "description": "fault revert errors"},
        "budget": _object(
            {
                "rto": SECONDS,
                "rpo": SECONDS,
                "rpo_writes": {"type": ["integer", "null"], "minimum": 0},
                "error_rate": {"type": ["number", "null"], "minimum": 0},
                "p99": SECONDS,
                "alert_within": SECONDS,
                "disruption": {"enum": ["software", "hardware", "az", "region", None]},
                "tier": {"type": ["string", "null"]},
            },
            description="the NFRs of the marker; null = not budgeted",
        ),
        "criteria": CRITERIA,
        "summary": _object(
            {
                "rto": SECONDS,
                "rto_status": {"enum": STATUSES},
                "rto_uncertainty": {**SECONDS, "description": "width of the recovery bracket behind rto"},
                "evidence_note": {
                    "type": ["string", "null"],
                    "description": "set when the uncertainty exceeds 10% of the RTO budget: why, and how to fix it",
                },
                "rpo": SECONDS,
                "lost_writes": {"type": ["integer", "null"], "minimum": 0},
                "error_rate": NUMBER_OR_NULL,
                "p99": SECONDS,
                "baseline_p99": SECONDS,
                "failed_operations": {"type": "integer", "minimum": 0},
                "operations": {"type": "integer", "minimum": 0},
                "alert_delay": SECONDS,
            },
            description="the headline figures (seconds, ratios); null = not measured",
        ),
        "measurement": _object(
            {
                "status": {"enum": STATUSES},
                "rto": SECONDS,
                "uncertainty": SECONDS,
                "clock_uncertainty": {"type": "number", "minimum": 0},
                "operations": {"type": "integer", "minimum": 0},
                "dropped": {"type": "integer", "minimum": 0},
                "sources": {"type": "array", "items": {"type": "string"}},
                "episodes": {"type": "array", "items": EPISODE},
                "baseline": WINDOW,
                "fault_window": WINDOW,
                "ledger": {**LEDGER, "type": ["object", "null"]},
                "alert_delay": SECONDS,
                "writes": {"type": "integer", "minimum": 0},
                "criteria": CRITERIA,
            }
        ),
        "verdict": _object(
            {
                "passed": {"type": "boolean"},
                "line": {"type": "string", "description": "the failure message; empty when passed"},
                "breaches": {
                    "type": "array",
                    "items": _object(
                        {
                            "nfr": {"enum": ["rto", "rpo", "rpo_writes", "error_rate", "p99", "alert_within"]},
                            "measured": NUMBER_OR_NULL,
                            "budget": {"type": "number"},
                            "text": {"type": "string"},
                        }
                    ),
                },
                "notes": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "about the evidence; never a breach",
                },
            }
        ),
        "faults": {
            "type": "array",
            "items": _object(
                {
                    "kind": {"type": "string"},
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "params": {"type": "object"},
                    "target": {"type": ["string", "null"]},
                    "injected_at": TIME,
                    "reverted_at": NUMBER_OR_NULL,
                    "error": {"type": ["string", "null"]},
                }
            ),
        },
        "marks": {
            "type": "array",
            "items": _object(
                {"at": TIME, "kind": {"type": "string"}, "name": {"type": "string"}, "detail": {"type": "object"}}
            ),
        },
        "series": _object(
            {
                "t0": TIME,
                "bucket": {"type": "number", "minimum": 0, "description": "bucket width, seconds"},
                "buckets": {"type": "integer", "minimum": 1, "maximum": 120},
                "ok": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                "fail": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                "p50": {"type": "array", "items": SECONDS},
                "p99": {"type": "array", "items": SECONDS},
                "lost_writes": {"type": "array", "items": {"type": "number"}, "description": "ack times - t0"},
                "lost_total": {"type": ["integer", "null"], "minimum": 0},
                "dropped": {"type": "integer", "minimum": 0},
            },
            description="the chart: at most 120 buckets whatever the length of the experiment",
        ),
        "attachments": {"type": "object", "description": "experiment.attach(); logs:* keys are service log tails"},
    },
    description="one resiliency test",
)

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://pypi.org/project/pytest-resiliency/journal-schema.json",
    "title": "pytest-resiliency journal",
    **_object(
        {
            "schema": {"const": JOURNAL_SCHEMA},
            "version": {"const": JOURNAL_VERSION},
            "created": {"type": "string", "description": "ISO 8601, UTC"},
            "tests": {"type": "array", "items": ENTRY, "description": "one entry per test, sorted by nodeid"},
        }
    ),
}

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def _is(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False
    return isinstance(value, _TYPES[name])


def validate(instance: Any, schema: dict[str, Any] | None = None, path: str = "$") -> list[str]:
    """Every violation of ``schema`` (default: the journal's) as ``path: what``; empty when valid."""
    schema = SCHEMA if schema is None else schema
    errors: list[str] = []
    if "const" in schema and instance != schema["const"]:
        errors.append(f"{path}: {instance!r} is not {schema['const']!r}")
    if "enum" in schema and instance not in schema["enum"]:
        errors.append(f"{path}: {instance!r} is not one of {schema['enum']!r}")
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is(instance, n) for n in names):
            return [*errors, f"{path}: {type(instance).__name__} is not {' or '.join(names)}"]
    if _is(instance, "number"):
        if "minimum" in schema and instance < schema["minimum"]:
            errors.append(f"{path}: {instance!r} < minimum {schema['minimum']}")
        if "maximum" in schema and instance > schema["maximum"]:
            errors.append(f"{path}: {instance!r} > maximum {schema['maximum']}")
    if isinstance(instance, dict):
        errors += [f"{path}: missing {key!r}" for key in schema.get("required", []) if key not in instance]
        properties = schema.get("properties", {})
        for key, value in instance.items():
            if key in properties:
                errors += validate(value, properties[key], f"{path}.{key}")
            elif schema.get("additionalProperties", True) is False:
                errors.append(f"{path}: unexpected {key!r}")
    if isinstance(instance, list) and "items" in schema:
        for i, item in enumerate(instance):
            errors += validate(item, schema["items"], f"{path}[{i}]")
    return errors
