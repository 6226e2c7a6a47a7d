"""The handler's summary, read from the reports pytest wrote (JUnit counts, journal RTOs)."""

from __future__ import annotations

import collections
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

OUTPUT_TAIL_LINES = 40
EXIT_CODES = {0: "passed", 1: "failed", 2: "interrupted", 3: "internal error", 4: "usage error", 5: "no tests"}


def counts(junit: Path) -> dict[str, int] | None:
    """tests/passed/failed/errors/skipped from the JUnit XML (summed over its test suites)."""
    if not junit.is_file():
        return None
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    total = {key: sum(int(s.get(key, 0)) for s in suites) for key in ("tests", "failures", "errors", "skipped")}
    return {
        "tests": total["tests"],
        "passed": total["tests"] - total["failures"] - total["errors"] - total["skipped"],
        "failed": total["failures"],
        "errors": total["errors"],
        "skipped": total["skipped"],
    }


def resiliency(journal: Path) -> dict[str, Any]:
    """Worst RTO, unrecovered experiments, lost writes and breach lines from the JSON journal."""
    if not journal.is_file():
        return {}
    tests = json.loads(journal.read_text(encoding="utf-8")).get("tests", [])
    rtos = [(t["summary"]["rto"], t["nodeid"]) for t in tests if t.get("summary", {}).get("rto") is not None]
    worst = max(rtos, default=None)
    return {
        "experiments": len(tests),
        "outcomes": dict(sorted(collections.Counter(str(t.get("outcome")) for t in tests).items())),
        "worst_rto_s": worst[0] if worst else None,
        "worst_rto_test": worst[1] if worst else None,
        "unrecovered": sorted(t["nodeid"] for t in tests if t.get("summary", {}).get("rto_status") == "not recovered"),
        "lost_writes": sum(t.get("summary", {}).get("lost_writes") or 0 for t in tests),
        "breaches": [f"{t['nodeid']}: {t['verdict']['line']}" for t in tests if t.get("outcome") == "breach"],
    }


def summarise(reports: Path, names: dict[str, str], exit_code: int) -> dict[str, Any]:
    return {
        "exit_code": exit_code,
        "status": EXIT_CODES.get(exit_code, "killed" if exit_code < 0 else f"exit {exit_code}"),
        "counts": counts(reports / names["junit"]),
        **resiliency(reports / names["journal"]),
    }


def tail(log: Path, lines: int = OUTPUT_TAIL_LINES) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
