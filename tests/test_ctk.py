"""Chaos Toolkit experiment files as pytest items: collection, strict verdicts, rollbacks, budgets.

Every experiment here runs for real through chaoslib (python providers in a module the
test writes); ``chaos run`` is the real CLI in a subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

SSH = "steady-state-hypothesis"
FAST = ["-p", "no:locust", "-p", "no:benchmark", "-p", "no:hypothesispytest", "-p", "no:html", "-p", "no:metadata"]

PROVIDERS = '''
import pathlib, time

def boom():
    raise RuntimeError("the action broke")

def touch(path, text="rolled back"):
    pathlib.Path(path).write_text(text)

def value(flag, before, after):
    """``before`` until the method wrote ``flag``, then ``after``."""
    return after if pathlib.Path(flag).exists() else before

def probe_raises():
    raise ConnectionError("no route to the service")

def sleep_then(seconds, started=None):
    if started:
        pathlib.Path(started).write_text("started")
    time.sleep(seconds)

def healthy_after(flag, seconds):
    """Raises until ``seconds`` after ``flag`` was written: an outage the probes can see."""
    path = pathlib.Path(flag)
    if path.exists() and time.time() - path.stat().st_mtime < seconds:
        raise ConnectionError("down")
    return True

def is_positive(value=None):
    return value > 0
'''


def py(func: str, **arguments: Any) -> dict[str, Any]:
    return {"type": "python", "module": "ctkprov", "func": func, "arguments": arguments}


def action(name: str, func: str, **kw: Any) -> dict[str, Any]:
    extra = kw.pop("_activity", {})
    return {"type": "action", "name": name, "provider": py(func, **kw), **extra}


def probe(name: str, func: str, tolerance: Any = None, **kw: Any) -> dict[str, Any]:
    extra = kw.pop("_activity", {})
    made = {"type": "probe", "name": name, "provider": py(func, **kw), **extra}
    if tolerance is not None:
        made["tolerance"] = tolerance
    return made


def experiment(title: str, method: list[Any], **extra: Any) -> dict[str, Any]:
    return {"version": "1.0.0", "title": title, "description": "written by the test", "method": method, **extra}


@pytest.fixture
def ctk(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(ctkprov=PROVIDERS)
    pytester.syspathinsert()
    return pytester


def write(pytester: pytest.Pytester, name: str, doc: dict[str, Any]) -> Path:
    path = pytester.path / name
    path.write_text(json.dumps(doc))
    return path


def journal_of(path: Path) -> dict[str, Any]:
    tests = json.loads(path.read_text())["tests"]
    return {t["nodeid"]: t for t in tests}


def test_failed_action_chaos_exits_0_but_the_item_fails_and_rolls_back(ctk: pytest.Pytester) -> None:
    rolled = ctk.path / "rolled-back"
    doc = experiment(
        "Action raises",
        [action("boom", "boom")],
        rollbacks=[action("undo", "touch", path=str(rolled))],
    )
    path = write(ctk, "boom.experiment.json", doc)
    env = {**os.environ, "PYTHONPATH": str(ctk.path)}
    cli = subprocess.run(
        ["chaos", "--no-version-check", "--no-log-file", "run", "--journal-path", "chaos.json", str(path)],
        cwd=ctk.path,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr  # Chaos Toolkit: the failed action is only logged
    chaos_journal = json.loads((ctk.path / "chaos.json").read_text())
    assert chaos_journal["run"][0]["status"] == "failed"
    assert chaos_journal["status"] == "completed"
    rolled.unlink(missing_ok=True)

    result = ctk.runpytest(*FAST, "--resiliency-json=j.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*method action 'boom' failed: RuntimeError: the action broke*"])
    assert rolled.read_text() == "rolled back"
    entry = journal_of(ctk.path / "j.json")["boom.experiment.json::Action raises"]
    ctk_journal = entry["attachments"]["ctk-journal"]
    assert ctk_journal["status"] == "failed"
    assert [r["status"] for r in ctk_journal["run"]] == ["failed"]
    assert [r["status"] for r in ctk_journal["rollbacks"]] == ["succeeded"]
    assert [f["kind"] for f in entry["faults"]] == ["ctk-action"]  # the action is a fault on the timeline


# value before, value after (ok), value after (deviated), tolerance
TOLERANCES = {
    "bool": (True, True, False, True),
    "int": (200, 200, 500, 200),
    "status": ({"status": 200}, {"status": 200}, {"status": 503}, 200),
    "str": ("up", "up", "down", "up"),
    "pair": (3, 4, 9, [1, 5]),
    "members": (2, 3, 7, [1, 2, 3]),
    "range": (0.5, 1.0, 2.0, {"type": "range", "range": [0, 1.5]}),
    "regex": ("ok: 12", "ok: 3", "error", {"type": "regex", "pattern": "^ok"}),
    "probe": (1, 2, -1, {"type": "probe", "name": "positive", "provider": py("is_positive")}),
}


def test_every_tolerance_form_is_checked_by_chaoslib_before_and_after(ctk: pytest.Pytester) -> None:
    for kind, (before, good, bad, tolerance) in TOLERANCES.items():
        for variant, after in (("ok", good), ("deviated", bad)):
            flag = ctk.path / f"{kind}-{variant}.flag"
            hypothesis = {
                "title": f"{kind} holds",
                "probes": [probe("value", "value", tolerance, flag=str(flag), before=before, after=after)],
            }
            doc = experiment(
                f"{kind} {variant}",
                [action("flip", "touch", path=str(flag))],
                **{"steady-state-hypothesis": hypothesis},
            )
            write(ctk, f"{kind}-{variant}.experiment.json", doc)
    result = ctk.runpytest(*FAST, "-q")
    result.assert_outcomes(passed=len(TOLERANCES), failed=len(TOLERANCES))
    for kind in TOLERANCES:
        result.stdout.fnmatch_lines([f"FAILED {kind}-deviated.experiment.json::{kind} deviated*"])
    result.stdout.fnmatch_lines(["*steady state deviated after the method: probe 'value' returned 'error'*"])


def test_before_check_raising_probe_is_an_error_and_nothing_runs(ctk: pytest.Pytester) -> None:
    acted = ctk.path / "acted"
    hypothesis = {"title": "reachable", "probes": [probe("reach", "probe_raises", True)]}
    write(
        ctk,
        "raises.experiment.json",
        experiment("Probe raises", [action("act", "touch", path=str(acted))], **{SSH: hypothesis}),
    )
    unmet = {"title": "up", "probes": [probe("v", "value", "up", flag="none", before="down", after="down")]}
    write(
        ctk,
        "unmet.experiment.json",
        experiment("Not steady", [action("act", "touch", path=str(acted))], **{SSH: unmet}),
    )
    result = ctk.runpytest(*FAST, "-rE")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*steady state not met before the method (nothing injected): probe 'reach' failed: "
            "ConnectionError: no route to the service*",
            "*steady state not met before the method (nothing injected): probe 'v' returned 'down'*",
        ]
    )
    assert not acted.exists()


def test_activity_timeout_is_enforced_and_rollbacks_still_run(ctk: pytest.Pytester) -> None:
    rolled = ctk.path / "rolled"
    slow = action("slow", "sleep_then", seconds=30, _activity={"timeout": 0.5})
    write(
        ctk,
        "slow.experiment.json",
        experiment("Slow action", [slow], rollbacks=[action("undo", "touch", path=str(rolled))]),
    )
    began = time.monotonic()
    result = ctk.runpytest(*FAST)
    assert time.monotonic() - began < 20
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*method action 'slow' failed: ActivityTimeout: 'slow' timed out after 0.5s*"])
    assert rolled.exists()


def test_ctrl_c_during_the_method_runs_the_rollbacks(ctk: pytest.Pytester) -> None:
    started, rolled = ctk.path / "started", ctk.path / "rolled"
    doc = experiment(
        "Interrupted",
        [action("long", "sleep_then", seconds=60, started=str(started))],
        rollbacks=[action("undo", "touch", path=str(rolled), text="undone after ctrl-c")],
    )
    write(ctk, "interrupted.experiment.json", doc)
    # SIGINT's default handler, even if this process ignores it (children inherit SIG_IGN).
    code = "import signal, sys, pytest; signal.signal(signal.SIGINT, signal.default_int_handler); "
    code += "sys.exit(pytest.main())"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *FAST, "-p", "no:cacheprovider", "-q"],
        cwd=ctk.path,
        env={**os.environ, "PYTHONPATH": str(ctk.path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), "the method never started"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2, out.decode()  # pytest: interrupted
    assert rolled.read_text() == "undone after ctrl-c"


def test_a_failed_method_probe_stops_the_method_and_the_budget_comes_from_the_extension(ctk: pytest.Pytester) -> None:
    flag = str(ctk.path / "down")
    method = [
        action("take-down", "touch", path=flag),
        probe("health-1", "healthy_after", flag=flag, seconds=30),
        probe("health-2", "healthy_after", flag=flag, seconds=30),
    ]
    ext = {"name": "resiliency", "rto": "100ms", "recovery_successes": 2, "recovery_window": 0, "tier": "gold"}
    write(ctk, "outage.experiment.json", experiment("Outage", method, extensions=[{"name": "other"}, ext]))
    result = ctk.runpytest(*FAST, "--resiliency-json=j.json", "--junitxml=junit.xml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*method probe 'health-1' failed: ConnectionError: down*"])
    entry = journal_of(ctk.path / "j.json")["outage.experiment.json::Outage"]
    assert entry["budget"]["rto"] == 0.1 and entry["budget"]["tier"] == "gold"
    assert entry["criteria"]["successes"] == 2 and entry["criteria"]["window"] == 0
    assert entry["summary"]["rto_status"] == "not recovered"  # each probe run is an operation
    assert [r["activity"]["name"] for r in entry["attachments"]["ctk-journal"]["run"]] == ["take-down", "health-1"]
    junit = (ctk.path / "junit.xml").read_text()
    assert "[[PROPERTY|resiliency.rto_budget_s=0.1]]" in junit  # xunit2: figures in <system-out>


def test_bad_experiment_files_are_collection_errors_naming_the_file(ctk: pytest.Pytester) -> None:
    good = experiment("Fine", [])
    write(ctk, "budget.experiment.json", {**good, "extensions": [{"name": "resiliency", "rto": "fast"}]})
    write(ctk, "unknown.experiment.json", {**good, "extensions": [{"name": "resiliency", "rtoo": "5s"}]})
    write(ctk, "fixtures.experiment.json", {**good, "extensions": [{"name": "resiliency", "fixtures": "aws"}]})
    write(ctk, "untitled.experiment.json", {**good, "title": " "})
    write(ctk, "tags.experiment.json", {**good, "tags": "aws"})
    # Broken, but recognisably experiments (a title and a method): reported, not skipped.
    (ctk.path / "broken.experiment.json").write_text('{"title": "x", "method": [')
    (ctk.path / "broken.experiment.yaml").write_text("title: [unclosed\nmethod: []\n")
    result = ctk.runpytest(*FAST)
    result.assert_outcomes(errors=7)
    result.stdout.fnmatch_lines_random(
        [
            "*budget.experiment.json: extension 'resiliency': rto='fast' is not a duration; use a number of seconds*",
            "*unknown.experiment.json: extension 'resiliency': unknown argument rtoo; accepted: rto, rpo*",
            "*fixtures.experiment.json: extension 'resiliency': 'fixtures' must be a list of pytest fixture names*",
            "*untitled.experiment.json: the experiment needs a non-empty 'title'*",
            "*tags.experiment.json: 'tags' must be a list of non-empty strings*",
            "*broken.experiment.json: not valid JSON*",
            "*broken.experiment.yaml: not valid YAML*",
        ]
    )


def test_chaoslib_rejects_an_invalid_activity_as_an_error(ctk: pytest.Pytester) -> None:
    doc = experiment("No such module", [{"type": "action", "name": "x", "provider": py("nope")}])
    write(ctk, "invalid.experiment.json", doc)
    result = ctk.runpytest(*FAST)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*invalid.experiment.json: invalid experiment: InvalidActivity: *'nope'*"])


def test_titles_tags_and_ini_patterns(ctk: pytest.Pytester) -> None:
    ctk.makeini("[pytest]\nresiliency_experiment_files = chaos/*.json\n")
    (ctk.path / "chaos").mkdir()
    tagged = experiment("Multi\n  line :: title", [], tags=["network", "db tier", "skip"])
    write(ctk, "chaos/custom-name.json", tagged)
    write(ctk, "other.experiment.yaml", experiment("Untagged", []))
    (ctk.path / "not-an-experiment.json").write_text("{}")
    result = ctk.runpytest(*FAST, "--strict-markers", "--collect-only", "-q")
    result.stdout.fnmatch_lines_random(
        ["chaos/custom-name.json::Multi line : title", "other.experiment.yaml::Untagged"]
    )
    assert "not-an-experiment" not in result.stdout.str()
    selected = ctk.runpytest(*FAST, "--strict-markers", "-m", "db_tier and network and ctk_skip and ctk", "-v")
    selected.assert_outcomes(passed=1)  # the tag "skip" is the marker ctk_skip: it does not skip the test
    selected.stdout.fnmatch_lines(["*chaos/custom-name.json::Multi line : title PASSED*"])


def test_without_chaoslib_experiment_items_are_skipped_with_the_reason(
    ctk: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(ctk, "any.experiment.json", experiment("Any", []))
    monkeypatch.setitem(sys.modules, "chaoslib", None)
    monkeypatch.setitem(sys.modules, "chaoslib.activity", None)
    result = ctk.runpytest(*FAST, "-rs")
    result.assert_outcomes(skipped=1)
    reason = "chaostoolkit-lib is not installed: pip install 'pytest-resiliency?ctk?' to run experiment files"
    result.stdout.fnmatch_lines([f"SKIPPED [[]1[]] any.experiment.json: {reason}"])


SLEEPER_CONFTEST = """
import os, subprocess, pytest

@pytest.fixture
def sleeper():
    proc = subprocess.Popen(["sleep", "60"])
    os.environ["CTK_PID"] = str(proc.pid)
    yield proc.pid
    os.environ.pop("CTK_PID", None)
    proc.kill()
    proc.wait()
"""


def _pause_experiment(title: str, rto: str) -> dict[str, Any]:
    ours = "pytest_resiliency.ctk"
    pid = "${pid}"
    alive = {
        "type": "probe",
        "name": "sleeper-running",
        "tolerance": True,
        "provider": {
            "type": "python",
            "module": f"{ours}.probes",
            "func": "check",
            "arguments": {"probe": "process", "arguments": {"target": pid}},
        },
    }
    monitor = {
        "type": "action",
        "name": "watch-sleeper",
        "provider": {
            "type": "python",
            "module": f"{ours}.actions",
            "func": "monitor",
            "arguments": {"probe": "process", "arguments": {"target": pid}, "every": "20ms"},
        },
    }
    pause = {
        "type": "action",
        "name": "pause-sleeper",
        "timeout": 10,
        "provider": {
            "type": "python",
            "module": f"{ours}.actions",
            "func": "inject_fault",
            "arguments": {"fault": "pause", "arguments": {"process": pid}, "duration": "400ms"},
        },
    }
    return experiment(
        title,
        [monitor, pause],
        configuration={"pid": {"type": "env", "key": "CTK_PID", "env_var_type": "int"}},
        extensions=[{"name": "resiliency", "rto": rto, "recovery_window": "200ms", "fixtures": ["sleeper"]}],
        tags=["local", "pause"],
        **{"steady-state-hypothesis": {"title": "running", "probes": [alive]}},
    )


def test_our_faults_and_probes_as_providers_measure_the_rto(ctk: pytest.Pytester) -> None:
    """A real SIGSTOP for 400 ms through inject_fault, watched by our process probe via monitor."""
    ctk.makeconftest(SLEEPER_CONFTEST)
    write(ctk, "pause-ok.experiment.json", _pause_experiment("Pause within budget", "10s"))
    write(ctk, "pause-breach.experiment.json", _pause_experiment("Pause over budget", "100ms"))
    result = ctk.runpytest(*FAST, "--resiliency-json=j.json", "-m", "pause and local")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*RTO *s (±*) > budget 100ms (first failure +*"])
    entries = journal_of(ctk.path / "j.json")
    ok = entries["pause-ok.experiment.json::Pause within budget"]
    breach = entries["pause-breach.experiment.json::Pause over budget"]
    assert (ok["outcome"], breach["outcome"]) == ("pass", "breach")
    for entry in (ok, breach):
        assert [f["kind"] for f in entry["faults"]] == ["pause"]  # our fault, not wrapped in a ctk-action
        assert 0.35 < entry["summary"]["rto"] < 2.0
        assert entry["summary"]["failed_operations"] >= 3
        run = entry["attachments"]["ctk-journal"]["run"]
        assert [r["status"] for r in run] == ["succeeded", "succeeded"]
