"""The blueprint's experiment files (resiliency_tests/ctk) pass against moto, serially and under -n 2,
with the same verdict line, journal, JUnit properties and HTML columns as test functions."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from junit_figures import case_figures

ROOT = Path(__file__).resolve().parents[1]
MEMORY = "resiliency_tests/ctk/ec2-memory-stress.experiment.json::EC2 memory stress on the web fleet through SSM"
TERMINATE = (
    "resiliency_tests/ctk/asg-terminate-instance.experiment.yaml::Terminate an instance of the web Auto Scaling group"
)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_blueprint_experiments_pass_against_moto_with_every_report(tmp_path: Path, workers: list[str]) -> None:
    reports = tmp_path / "reports"
    cmd = [sys.executable, "-m", "pytest", "resiliency_tests/ctk", "-p", "no:cacheprovider", "-p", "no:locust"]
    cmd += [f"--junitxml={reports / 'junit.xml'}", f"--html={reports / 'report.html'}", "--self-contained-html"]
    cmd += [f"--resiliency-json={reports / 'journal.json'}", "-m", "aws and ec2", *workers]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    tests = {t["nodeid"]: t for t in json.loads((reports / "journal.json").read_text())["tests"]}
    assert set(tests) == {MEMORY, TERMINATE}
    memory, terminate = tests[MEMORY], tests[TERMINATE]
    assert memory["outcome"] == terminate["outcome"] == "pass"
    assert [f["kind"] for f in memory["faults"]] == ["ssm-document"]
    sent = memory["faults"][0]["params"]["parameters"]
    assert (sent["DurationSeconds"], sent["Percent"]) == ("60", "80")
    assert [f["kind"] for f in terminate["faults"]] == ["asg-terminate-instances"]
    assert (memory["budget"]["rto"], terminate["budget"]["rto"]) == (60.0, 300.0)
    for entry in (memory, terminate):
        assert entry["summary"]["rto"] == 0.0  # moto heals at once; the monitor saw no failure
        assert entry["summary"]["operations"] > 3
        journal = entry["attachments"]["ctk-journal"]
        assert journal["status"] == "completed"
        assert [r["status"] for r in journal["rollbacks"]] == ["succeeded"]
    cases = {c.get("name"): c for c in ET.parse(reports / "junit.xml").getroot().iter("testcase")}
    props = case_figures(cases["EC2 memory stress on the web fleet through SSM"])
    assert props["resiliency.outcome"] == "pass"
    assert props["resiliency.rto_budget_s"] == "60"
    html = (reports / "report.html").read_text()
    assert "Terminate an instance of the web Auto Scaling group" in html
    assert ">RTO</th>" in html and html.count("col-rto") >= 2  # header + each row (in pytest-html's data)
