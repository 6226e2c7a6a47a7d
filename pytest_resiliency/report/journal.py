"""The JSON journal (``--resiliency-json PATH``): every test's payload in one document.

Schema (version 2: the RTO is a bracket, see README "Measurement definitions")::

    {"schema": "pytest-resiliency/journal", "version": 2, "created": "<ISO 8601>",
     "tests": [{"nodeid": ..., "pytest_outcome": "passed|failed|skipped",
                "xfail": bool, ...the payload (see docs/journal.md)...}]}

Tests are sorted by node id, so serial and ``-n 2`` runs produce comparable files.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any

JOURNAL_SCHEMA = "pytest-resiliency/journal"
JOURNAL_VERSION = 2


def document(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schema": JOURNAL_SCHEMA,
        "version": JOURNAL_VERSION,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "tests": sorted(entries, key=lambda e: e["nodeid"]),
    }


def write(path: Path, entries: list[dict[str, Any]]) -> None:
    """Write atomically: a reader (or a crash) never sees half a journal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(document(entries), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)
