"""Suite-level JUnit properties, computed where the XML is written (controller or serial run)."""

from __future__ import annotations

from typing import Any

import pytest


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


def add_suite_properties(config: pytest.Config, entries: list[dict[str, Any]]) -> None:
    """Attach to pytest's LogXML before it writes; a no-op without ``--junitxml``."""
    try:
        from _pytest.junitxml import xml_key
    except ImportError:  # pragma: no cover - pytest moved it; suite properties are a bonus
        return
    xml = config.stash.get(xml_key, None)
    if xml is None or not entries:
        return
    for name, value in suite_properties(entries):
        xml.add_global_property(name, value)
