"""Allure: with ``--alluredir`` each resiliency test carries its budget and figures as
parameters and the timeline chart, NFR table and breach line as attachments.

Read from the result JSON allure-pytest writes (what ``allure generate`` reads).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from test_compare import SUITE, runpytest

from pytest_resiliency.budget import format_duration

pytest.importorskip("allure_pytest", reason="allure-pytest is not installed (pip install allure-pytest)")

PLAIN = "def test_plain():\n    pass\n"


def results(directory: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for path in directory.glob("*-result.json"):
        data = json.loads(path.read_text())
        found[data["fullName"].rsplit("#", 1)[-1]] = data
    return found


def run(pytester: pytest.Pytester, outage: float, budget: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_suite=SUITE, test_plain=PLAIN)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OUTAGE", str(outage))
        mp.setenv("BUDGET", budget)
        return runpytest(pytester, *args)


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_allure_results_carry_parameters_and_attachments(pytester: pytest.Pytester, workers: list[str]) -> None:
    out = pytester.path / "allure"
    run(pytester, 0.6, "300ms", f"--alluredir={out}", "--resiliency-json=journal.json", *workers).assert_outcomes(
        passed=2, failed=1
    )
    journal = {t["nodeid"]: t for t in json.loads((pytester.path / "journal.json").read_text())["tests"]}
    measured = journal["test_suite.py::test_orders_recover"]["summary"]
    found = results(out)
    assert set(found) == {"test_orders_recover", "test_payments_recover", "test_plain"}

    breached = found["test_orders_recover"]
    params = {p["name"]: p for p in breached["parameters"]}
    assert params["budget rto"]["value"] == "'300ms'"
    assert params["verdict"]["value"] == "'BREACH'"
    assert params["RTO"]["value"] == repr(format_duration(measured["rto"]))  # the journal's figure
    assert measured["rto"] > 0.3
    assert re.fullmatch(r"'\d+(\.\d+)?ms'", params["RTO uncertainty"]["value"])  # about the 20 ms spacing
    assert params["error rate"]["value"].endswith("%'")
    assert all(p.get("excluded") is True for p in params.values())  # figures never split the history
    assert {"name": "tag", "value": "resiliency"} in breached["labels"]
    attachments = {a["name"]: a for a in breached["attachments"]}
    assert set(attachments) == {"resiliency timeline", "resiliency NFRs", "resiliency breach"}
    assert attachments["resiliency timeline"]["type"] == "image/svg+xml"
    assert (out / attachments["resiliency timeline"]["source"]).read_text().startswith("<svg")
    table = (out / attachments["resiliency NFRs"]["source"]).read_text()
    assert "<td>RTO</td><td>300ms</td>" in table and "BREACH" in table
    line = (out / attachments["resiliency breach"]["source"]).read_text()
    assert line.startswith(f"RTO {format_duration(measured['rto'])}") and "> budget 300ms" in line
    assert breached["status"] == "failed"

    passed = found["test_payments_recover"]
    assert {a["name"] for a in passed["attachments"]} == {"resiliency timeline", "resiliency NFRs"}
    assert {p["name"]: p["value"] for p in passed["parameters"]}["verdict"] == "'PASS'"

    plain = found["test_plain"]  # not a resiliency test: nothing added
    assert not plain.get("parameters") and not plain.get("attachments")
    assert {"name": "tag", "value": "resiliency"} not in plain["labels"]


def test_history_id_is_stable_when_figures_change(pytester: pytest.Pytester) -> None:
    first, second = pytester.path / "a", pytester.path / "b"
    run(pytester, 0.2, "5s", f"--alluredir={first}").assert_outcomes(passed=3)
    run(pytester, 0.6, "5s", f"--alluredir={second}").assert_outcomes(passed=3)
    a, b = results(first)["test_orders_recover"], results(second)["test_orders_recover"]
    assert {p["name"]: p["value"] for p in a["parameters"]}["RTO"] != {p["name"]: p["value"] for p in b["parameters"]}[
        "RTO"
    ]
    assert a["historyId"] == b["historyId"]


def test_without_alluredir_nothing_is_registered(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        "def pytest_sessionfinish(session):\n"
        "    print('allure bridge:', session.config.pluginmanager.has_plugin('resiliency-allure'))\n"
    )
    result = run(pytester, 0.2, "5s", "-s")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*allure bridge: False*"])
