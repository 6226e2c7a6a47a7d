"""Reading a test case's resiliency figures back from JUnit XML, wherever the family put them.

Under xunit2 they are ``[[PROPERTY|name=value]]`` lines in ``<system-out>``; under xunit1,
``<properties>``. The plugin's tests read both the same way.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from pytest_resiliency.report.junit import parse_property_lines


def case_figures(case: ET.Element) -> dict[str, str]:
    """Every ``name -> value`` of one ``<testcase>``: its properties, then its output lines."""
    figures = {p.get("name", ""): p.get("value", "") for p in case.findall("properties/property")}
    for out in case.findall("system-out"):
        figures.update(parse_property_lines(out.text or ""))
    return figures
