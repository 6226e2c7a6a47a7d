"""Chaos Toolkit fidelity (issue 15): controls and safeguards, runtime strategies, process groups,
secrets, exit statuses, Ctrl-C, one outcome word, failure lines, --resiliency-ctk-var and the dry run.

Every experiment runs for real through chaoslib in a pytester subprocess or in-process run;
``chaos run`` is the real CLI where its behaviour is the reference. The safeguard is the real
``chaosaddons.controls.safeguards`` control of chaostoolkit-addons.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from junit_figures import case_figures

SSH = "steady-state-hypothesis"
FAST = ["-p", "no:locust", "-p", "no:benchmark", "-p", "no:hypothesispytest", "-p", "no:html", "-p", "no:metadata"]

PROVIDERS = '''
import json, os, pathlib, time

def touch(path, text="done"):
    pathlib.Path(path).write_text(text)

def exists(path):
    return pathlib.Path(path).exists()

def absent(path):
    return not pathlib.Path(path).exists()

def down_for(flag, seconds):
    """False from when ``flag`` was written until ``seconds`` later: an outage the checks see."""
    path = pathlib.Path(flag)
    return not (path.exists() and time.time() - path.stat().st_mtime < seconds)

def sleep(seconds, started=None):
    if started:
        pathlib.Path(started).write_text("started")
    time.sleep(seconds)

def echo(value):
    return value

def leave():
    from chaoslib.exit import exit_gracefully
    exit_gracefully()
    time.sleep(5)  # the signal interrupts the experiment long before this ends

def leave_now():
    from chaoslib.exit import exit_ungracefully
    exit_ungracefully()
    time.sleep(5)

def raises_if(path):
    if pathlib.Path(path).exists():
        raise ConnectionError("health endpoint unreachable")
    return True
'''

# Records every control hook chaoslib calls: level, the context's name or title, the state's shape.
RECORDER = """
import json, os

def _log(hook, context, state=None, **kwargs):
    name = context.get("name") or context.get("title") if isinstance(context, dict) else str(context)
    shape = type(state).__name__ if state is not None else None
    if isinstance(state, dict) and "steady_state_met" in state:
        shape = "hypothesis-state"
    elif isinstance(state, dict) and "run" in state and "rollbacks" in state:
        shape = "journal"
    elif isinstance(state, dict) and "activity" in state:
        shape = "run"
    with open(os.environ["CONTROL_LOG"], "a") as out:
        out.write(json.dumps([hook, name, shape]) + "\\n")

def configure_control(**kwargs):
    _log("configure_control", {"name": "-"})

def before_experiment_control(context, **kwargs): _log("before_experiment", context)
def after_experiment_control(context, state, **kwargs): _log("after_experiment", context, state)
def before_hypothesis_control(context, **kwargs): _log("before_hypothesis", context)
def after_hypothesis_control(context, state, **kwargs): _log("after_hypothesis", context, state)
def before_method_control(context, **kwargs): _log("before_method", context)
def after_method_control(context, state, **kwargs): _log("after_method", context, state)
def before_rollback_control(context, **kwargs): _log("before_rollback", context)
def after_rollback_control(context, state, **kwargs): _log("after_rollback", context, state)
def before_activity_control(context, **kwargs): _log("before_activity", context)
def after_activity_control(context, state, **kwargs): _log("after_activity", context, state)

def before_loading_experiment_control(context, **kwargs):
    _log("before_loading", {"name": os.path.basename(context)})

def after_loading_experiment_control(context, state, **kwargs):
    _log("after_loading", {"name": os.path.basename(context)}, state)

def cleanup_control():
    _log("cleanup_control", {"name": "-"})
"""


def py(func: str, **arguments: Any) -> dict[str, Any]:
    return {"type": "python", "module": "ctkprov", "func": func, "arguments": arguments}


def action(name: str, func: str, **kw: Any) -> dict[str, Any]:
    extra = kw.pop("_activity", {})
    return {"type": "action", "name": name, "provider": py(func, **kw), **extra}


def probe(name: str, func: str, tolerance: Any = None, **kw: Any) -> dict[str, Any]:
    made: dict[str, Any] = {"type": "probe", "name": name, "provider": py(func, **kw)}
    if tolerance is not None:
        made["tolerance"] = tolerance
    return made


def process(name: str, script: str, kind: str = "action", **extra: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "name": name,
        "provider": {"type": "process", "path": "sh", "arguments": ["-c", script]},
        **extra,
    }


def experiment(title: str, method: list[Any], **extra: Any) -> dict[str, Any]:
    return {"version": "1.0.0", "title": title, "description": "written by the test", "method": method, **extra}


@pytest.fixture
def ctk(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(ctkprov=PROVIDERS, ctkrecorder=RECORDER)
    pytester.syspathinsert()
    return pytester


def write(pytester: pytest.Pytester, name: str, doc: dict[str, Any]) -> Path:
    path = pytester.path / name
    path.write_text(json.dumps(doc))
    return path


def journal_of(path: Path) -> dict[str, Any]:
    return {t["nodeid"]: t for t in json.loads(path.read_text())["tests"]}


def chaos_run(pytester: pytest.Pytester, path: Path, *flags: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The real ``chaos run``; returns its journal."""
    journal = pytester.path / f"{path.stem}.chaos.json"
    done = subprocess.run(
        ["chaos", "--no-version-check", "--no-log-file", "run", "--journal-path", str(journal), *flags, str(path)],
        cwd=pytester.path,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(pytester.path), os.environ.get("PYTHONPATH")])),
            **(env or {}),
        },
        capture_output=True,
        timeout=120,
    )
    assert journal.exists(), done.stderr.decode()[-2000:]
    result: dict[str, Any] = json.loads(journal.read_text())
    return result


def run_in_subprocess(pytester: pytest.Pytester, *args: str, env: dict[str, str] | None = None) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*FAST, "-p", "no:cacheprovider", *args)


# -- 1. controls ---------------------------------------------------------------------------------

RECORDED = {"name": "recorder", "provider": {"type": "python", "module": "ctkrecorder"}}


def test_every_control_hook_is_called_at_the_same_points_as_chaos_run(
    ctk: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = experiment(
        "Controlled",
        [action("act", "touch", path=str(ctk.path / "acted")), probe("look", "exists", path=str(ctk.path / "acted"))],
        controls=[RECORDED],
        rollbacks=[action("undo", "touch", path=str(ctk.path / "undone"))],
        runtime={"rollbacks": {"strategy": "always"}},
        **{SSH: {"title": "fine", "probes": [probe("ok", "echo", True, value=True)]}},
    )
    path = write(ctk, "controlled.experiment.json", doc)
    chaos_log, ours_log = ctk.path / "chaos.log", ctk.path / "ours.log"
    chaos_journal = chaos_run(ctk, path, env={"CONTROL_LOG": str(chaos_log)})
    assert chaos_journal["status"] == "completed"
    monkeypatch.setenv("CONTROL_LOG", str(ours_log))
    result = ctk.runpytest_subprocess(*FAST, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    chaos_calls = [json.loads(line) for line in chaos_log.read_text().splitlines()]
    our_calls = [json.loads(line) for line in ours_log.read_text().splitlines()]
    assert our_calls == chaos_calls
    hooks = {call[0] for call in our_calls}
    assert hooks >= {
        "configure_control",
        "before_experiment",
        "after_experiment",
        "before_hypothesis",
        "after_hypothesis",
        "before_method",
        "after_method",
        "before_rollback",
        "after_rollback",
        "before_activity",
        "after_activity",
        "cleanup_control",
    }
    assert ["after_experiment", "Controlled", "journal"] in our_calls
    assert ["after_method", "Controlled", "list"] in our_calls  # the method's runs, as chaoslib passes them


def test_control_files_are_global_controls_with_loader_hooks_as_in_chaos_run(
    ctk: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    (ctk.path / "controls.yaml").write_text("recorder:\n  provider:\n    type: python\n    module: ctkrecorder\n")
    doc = experiment(
        "Globally controlled",
        [action("act", "echo", value=1)],
        rollbacks=[action("undo", "echo", value=2)],
        **{SSH: {"title": "fine", "probes": [probe("ok", "echo", True, value=True)]}},
    )
    path = write(ctk, "global.experiment.json", doc)
    chaos_log, ours_log = ctk.path / "chaos.log", ctk.path / "ours.log"
    chaos_run(ctk, path, "--control-file", "controls.yaml", env={"CONTROL_LOG": str(chaos_log)})
    monkeypatch.setenv("CONTROL_LOG", str(ours_log))
    result = ctk.runpytest_subprocess(*FAST, "-p", "no:cacheprovider", "--resiliency-ctk-control-file=controls.yaml")
    result.assert_outcomes(passed=1)
    chaos_calls = [json.loads(line) for line in chaos_log.read_text().splitlines()]
    our_calls = [json.loads(line) for line in ours_log.read_text().splitlines()]
    assert our_calls == chaos_calls, (our_calls, chaos_calls)
    assert our_calls[:2] == [
        ["before_loading", "global.experiment.json", None],
        ["after_loading", "global.experiment.json", "dict"],
    ]
    missing = ctk.runpytest(*FAST, "--resiliency-ctk-control-file=nope.yaml")
    assert missing.ret == pytest.ExitCode.USAGE_ERROR
    missing.stderr.fnmatch_lines(["*--resiliency-ctk-control-file nope.yaml: no such file*"])


SAFEGUARD = "chaosaddons.controls.safeguards"


def _safeguard(probe_doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "safeguard",
        "provider": {"type": "python", "module": SAFEGUARD, "arguments": {"probes": [probe_doc]}},
    }


def test_a_tripped_safeguard_stops_before_the_method_as_chaos_run_does_and_is_an_error(ctk: pytest.Pytester) -> None:
    acted = ctk.path / "acted"
    tripped = {**probe("system-is-calm", "echo", True, value=False)}  # a pre-check safeguard that fails
    doc = experiment(
        "Guarded",
        [action("inject", "sleep", seconds=0.5), action("act", "touch", path=str(acted))],
        controls=[_safeguard(tripped)],
    )
    path = write(ctk, "guarded.experiment.json", doc)
    write(ctk, "after.experiment.json", experiment("Runs after", [action("fine", "echo", value=1)]))
    chaos_journal = chaos_run(ctk, path)
    assert chaos_journal["status"] == "interrupted"
    assert not acted.exists()

    result = run_in_subprocess(ctk, "-rE", "--resiliency-json=j.json")
    result.assert_outcomes(errors=1, passed=1)  # pytest survived SIGUSR1; the next experiment ran
    # the pre-check's verdict is read before the method; its SIGUSR1 arrives a moment later and is handled too
    result.stdout.fnmatch_lines(
        ["*interrupted before the method (nothing injected): *safeguard 'system-is-calm' was not within its tolerance*"]
    )
    assert not acted.exists()


def test_a_safeguard_tripping_during_the_method_interrupts_it_rolls_back_and_aborts(ctk: pytest.Pytester) -> None:
    flag, second, rolled = ctk.path / "broken", ctk.path / "second-action", ctk.path / "rolled"
    watcher = {**probe("flag-absent", "absent", True, path=str(flag)), "frequency": 0.05}
    doc = experiment(
        "Guarded during",
        [
            action("break", "touch", path=str(flag)),
            action("hold", "sleep", seconds=5),
            action("too-late", "touch", path=str(second)),
        ],
        controls=[_safeguard(watcher)],
        rollbacks=[action("restore", "touch", path=str(rolled))],
    )
    write(ctk, "guarded.experiment.json", doc)
    began = time.monotonic()
    result = run_in_subprocess(ctk, "-rE", "--resiliency-json=j.json")
    assert time.monotonic() - began < 30
    result.assert_outcomes(passed=1, errors=1)  # call passed, teardown ERROR: aborted like a stop condition
    result.stdout.fnmatch_lines(["*aborted: Chaos Toolkit experiment interrupted: SIGUSR1 received*rollbacks ran*"])
    assert rolled.exists() and not second.exists()
    entry = journal_of(ctk.path / "j.json")["guarded.experiment.json::Guarded during"]
    assert entry["outcome"] == "aborted"
    journal = entry["attachments"]["ctk-journal"]
    assert journal["status"] == "interrupted"
    assert [r["status"] for r in journal["rollbacks"]] == ["succeeded"]


def test_exit_gracefully_from_a_provider_interrupts_only_this_experiment(ctk: pytest.Pytester) -> None:
    rolled = ctk.path / "rolled"
    doc = experiment("Leaves", [action("leave", "leave")], rollbacks=[action("undo", "touch", path=str(rolled))])
    write(ctk, "leaves.experiment.json", doc)
    write(ctk, "z.experiment.json", experiment("Next one", [action("fine", "echo", value=1)]))
    result = run_in_subprocess(ctk, "-rE")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*interrupted: SIGUSR1 received (chaoslib.exit.exit_gracefully)*"])
    assert rolled.exists()
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL  # this process was never touched


def test_exit_ungracefully_still_rolls_back_under_pytest_where_chaos_run_skips_the_rollbacks(
    ctk: pytest.Pytester,
) -> None:
    rolled = ctk.path / "rolled"
    doc = experiment(
        "Leaves now", [action("leave", "leave_now")], rollbacks=[action("undo", "touch", path=str(rolled))]
    )
    path = write(ctk, "now.experiment.json", doc)
    chaos_journal = chaos_run(ctk, path)
    assert chaos_journal["status"] == "interrupted" and chaos_journal["rollbacks"] == []
    assert not rolled.exists()  # chaos run: SIGUSR2 means no rollbacks
    result = run_in_subprocess(ctk, "-rE")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*interrupted: SIGUSR2 received (chaoslib.exit.exit_ungracefully)*rollbacks ran*"])
    assert rolled.exists()  # a fault is always reverted


def test_safeguards_interrupt_under_xdist_too(ctk: pytest.Pytester) -> None:
    rolled = ctk.path / "rolled"
    doc = experiment("Leaves", [action("leave", "leave")], rollbacks=[action("undo", "touch", path=str(rolled))])
    write(ctk, "leaves.experiment.json", doc)
    write(ctk, "z.experiment.json", experiment("Next one", [action("fine", "echo", value=1)]))
    result = run_in_subprocess(ctk, "-rE", "-n", "2")
    result.assert_outcomes(passed=2, errors=1)  # the worker survived its SIGUSR1
    assert rolled.exists()


def test_after_check_probe_raising_rolls_back_where_chaos_runs_default_strategy_does_not(
    ctk: pytest.Pytester,
) -> None:
    flag, rolled = ctk.path / "broken", ctk.path / "rolled"
    hypothesis = {"title": "reachable", "probes": [probe("health", "raises_if", True, path=str(flag))]}
    doc = experiment(
        "Probe raises after",
        [action("break", "touch", path=str(flag))],
        rollbacks=[action("undo", "touch", path=str(rolled))],
        **{SSH: hypothesis},
    )
    path = write(ctk, "after.experiment.json", doc)
    chaos_journal = chaos_run(ctk, path)
    assert chaos_journal["status"] == "failed" and chaos_journal["rollbacks"] == []  # default strategy: skipped
    assert not rolled.exists()
    flag.unlink()
    result = ctk.runpytest(*FAST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*steady state deviated after the method: probe 'health' failed: ConnectionError: health endpoint*"]
    )
    assert rolled.exists()


# -- 2. runtime strategies -------------------------------------------------------------------------


def _deviating(title: str, flag: Path, runtime: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """Healthy before, deviated after: the method writes ``flag`` and the probe wants it absent."""
    doc = experiment(
        title,
        [action("break", "touch", path=str(flag))],
        **{SSH: {"title": "flag absent", "probes": [probe("absent", "absent", True, path=str(flag))]}},
        **extra,
    )
    if runtime is not None:
        doc["runtime"] = runtime
    return doc


def test_hypothesis_strategies_decide_which_checks_run(ctk: pytest.Pytester) -> None:
    cases = {
        "default": "failed",
        "before-method-only": "passed",  # the after-check its author switched off
        "after-method-only": "failed",
        "continuously": "failed",
    }
    for strategy in cases:
        flag = ctk.path / f"{strategy}.flag"
        write(ctk, f"{strategy}.experiment.json", _deviating(strategy, flag, {"hypothesis": {"strategy": strategy}}))
    result = ctk.runpytest(*FAST, "-v", "--resiliency-json=j.json")
    result.assert_outcomes(passed=1, failed=3)
    for strategy, outcome in cases.items():
        result.stdout.fnmatch_lines([f"*{strategy}.experiment.json::{strategy} {outcome.upper()}*"])
    entries = journal_of(ctk.path / "j.json")
    before_only = entries["before-method-only.experiment.json::before-method-only"]["attachments"]["ctk-journal"]
    assert before_only["steady_states"]["after"] is None and before_only["steady_states"]["before"] is not None
    after_only = entries["after-method-only.experiment.json::after-method-only"]["attachments"]["ctk-journal"]
    assert after_only["steady_states"]["before"] is None


def test_during_checks_with_fail_fast_fail_where_chaos_run_fail_fast_fails(ctk: pytest.Pytester) -> None:
    flag = ctk.path / "down"
    hypothesis = {"title": "up", "probes": [probe("up", "down_for", True, flag=str(flag), seconds=0.6)]}
    method = [action("take-down", "touch", path=str(flag)), action("wait", "sleep", seconds=1.2)]
    undo = [action("undo", "echo", value="nothing to undo")]  # the actions stay one fault episode until here
    runtime = {"hypothesis": {"strategy": "during-method-only", "frequency": 0.1, "fail_fast": True}}
    path = write(ctk, "fast.experiment.json", experiment("Fail fast", method, runtime=runtime, **{SSH: hypothesis}))
    lenient = {"hypothesis": {"strategy": "continuously", "frequency": "100ms"}}
    ext = [{"name": "resiliency", "recovery_successes": 2, "recovery_window": "150ms"}]
    write(
        ctk,
        "lenient.experiment.json",
        experiment("Lenient", method, runtime=lenient, extensions=ext, rollbacks=undo, **{SSH: hypothesis}),
    )

    chaos_journal = chaos_run(
        ctk, path, "--hypothesis-strategy=during-method-only", "--hypothesis-frequency=0.1", "--fail-fast"
    )
    assert chaos_journal["status"] == "failed" and chaos_journal["steady_states"]["during"]
    flag.unlink()

    result = ctk.runpytest(*FAST, "-v", "--resiliency-json=j.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*steady state deviated during the method (fail_fast, 1 of * checks = *% >= 0%): probe 'up' returned False*"]
    )
    entries = journal_of(ctk.path / "j.json")
    lenient_entry = entries["lenient.experiment.json::Lenient"]
    during = lenient_entry["attachments"]["ctk-journal"]["steady_states"]["during"]
    assert len(during) >= 5 and any(not s["steady_state_met"] for s in during) and during[-1]["steady_state_met"]
    # the during-checks are evidence: the outage they saw is the measured RTO
    summary = lenient_entry["summary"]
    assert summary["failed_operations"] >= 3 and 0.4 < (summary["rto"] or 0) < 1.5
    flag.unlink()
    overridden = ctk.runpytest(*FAST, "--resiliency-ctk-fail-fast", "lenient.experiment.json")
    overridden.assert_outcomes(failed=1)  # the command line turns fail_fast on, as chaos run --fail-fast
    bad = ctk.runpytest(*FAST, "--resiliency-ctk-fail-fast-ratio=150")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--resiliency-ctk-fail-fast-ratio=150.0 must be true, false or a percentage 0-100*"])


def test_rollback_strategies_and_their_command_line_override(ctk: pytest.Pytester) -> None:
    cases = {"never": False, "deviated": True, "always": True, "default": True}
    for strategy in cases:
        flag = ctk.path / f"{strategy}.flag"
        rollbacks = [action("undo", "touch", path=str(ctk.path / f"{strategy}.rolled"))]
        write(
            ctk,
            f"{strategy}.experiment.json",
            _deviating(strategy, flag, {"rollbacks": {"strategy": strategy}}, rollbacks=rollbacks),
        )
    result = ctk.runpytest(*FAST)
    result.assert_outcomes(failed=4)
    for strategy, played in cases.items():
        assert (ctk.path / f"{strategy}.rolled").exists() is played, strategy
        (ctk.path / f"{strategy}.rolled").unlink(missing_ok=True)
        (ctk.path / f"{strategy}.flag").unlink()
    overridden = ctk.runpytest(
        *FAST, "--resiliency-ctk-rollback-strategy=never", "--resiliency-ctk-hypothesis-strategy=before-method-only"
    )
    overridden.assert_outcomes(passed=4)  # no after-check, so nothing deviated
    assert not list(ctk.path.glob("*.rolled"))


def test_unsupported_runtime_keys_and_values_are_errors_naming_them(ctk: pytest.Pytester) -> None:
    write(
        ctk, "key.experiment.json", experiment("Key", [], runtime={"hypothesis": {"strategy": "default", "every": 1}})
    )
    write(ctk, "value.experiment.json", experiment("Value", [], runtime={"rollbacks": {"strategy": "sometimes"}}))
    write(ctk, "top.experiment.json", experiment("Top", [], runtime={"cooldown": 3}))
    write(ctk, "freq.experiment.json", experiment("Freq", [], runtime={"hypothesis": {"frequency": 0}}))
    result = ctk.runpytest(*FAST)
    result.assert_outcomes(errors=4)
    result.stdout.fnmatch_lines_random(
        [
            "*key.experiment.json: unsupported key runtime.hypothesis.every; accepted: runtime.hypothesis.strategy*",
            "*value.experiment.json: runtime.rollbacks.strategy='sometimes' is not one of default, always, never,*",
            "*top.experiment.json: unsupported key runtime.cooldown; accepted: runtime.hypothesis, runtime.rollbacks*",
            "*freq.experiment.json: runtime.hypothesis.frequency=0 must be a positive number of seconds*",
        ]
    )
    bad = ctk.runpytest(*FAST, "--resiliency-ctk-hypothesis-strategy=sometimes")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(
        ["*--resiliency-ctk-hypothesis-strategy='sometimes' is not one of default, before-method-only*"]
    )


# -- 3. process groups ------------------------------------------------------------------------------


def _alive(marker: str) -> list[str]:
    found = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    return found.stdout.split()


def test_an_activity_timeout_ends_the_process_group_and_says_so(ctk: pytest.Pytester) -> None:
    marker = f"31.{os.getpid()}"  # a sleep nobody else runs
    slow = process("fault-script", f"sleep {marker} & sleep {marker}; wait", timeout=0.5)
    write(ctk, "slow.experiment.json", experiment("Slow script", [slow]))
    try:
        result = ctk.runpytest(*FAST)
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                "*method action 'fault-script' failed: ActivityTimeout: 'fault-script' timed out after 0.5s; "
                "its process group * was ended (SIGTERM)*"
            ]
        )
        assert _alive(marker) == []  # neither the script nor its background child outlived the test
    finally:
        for pid in _alive(marker):  # only if the assertion failed: this test's own sleeps, by pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


# -- 4. secrets --------------------------------------------------------------------------------------


def test_secrets_are_redacted_in_every_copy_of_the_journal(
    ctk: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTK_DB_PASSWORD", "hunter2-from-env")
    doc = experiment(
        "Hidden values",
        [action("show", "echo", value="${api_token} and ${db}")],
        secrets={"svc": {"api_token": "s3cr3t-inline-value", "db": {"type": "env", "key": "CTK_DB_PASSWORD"}}},
        configuration={"region": "eu-west-1"},
    )
    doc["method"][0]["secrets"] = ["svc"]
    write(ctk, "hidden.experiment.json", doc)
    result = ctk.runpytest(*FAST, "--resiliency-json=j.json")
    result.assert_outcomes(passed=1)
    text = (ctk.path / "j.json").read_text()
    assert "s3cr3t-inline-value" not in text and "hunter2-from-env" not in text
    journal = journal_of(ctk.path / "j.json")["hidden.experiment.json::Hidden values"]["attachments"]["ctk-journal"]
    assert journal["experiment"]["secrets"]["svc"]["api_token"] == "[redacted]"
    assert journal["run"][0]["output"] == "[redacted] and [redacted]"  # the output echoed both
    assert journal["experiment"]["configuration"] == {"region": "eu-west-1"}  # not a secret: kept


# -- 5. exit statuses, Ctrl-C, outcome word, failure lines -----------------------------------------


def test_non_zero_exit_status_fails_only_with_the_opt_in(ctk: pytest.Pytester) -> None:
    ext = [{"name": "resiliency", "fail_on_exit_status": True}]
    failing = [process("kubectl-apply", "echo 'error: no such resource' >&2; exit 3")]
    rollback = [process("undo", "exit 4")]
    write(ctk, "lenient.experiment.json", experiment("Lenient", failing, rollbacks=rollback))
    write(ctk, "strict.experiment.json", experiment("Strict", failing, rollbacks=rollback, extensions=ext))
    ok_probe = [process("grep", "exit 1", kind="probe", tolerance=1)]  # a tolerance judges the status itself
    write(ctk, "probe.experiment.json", experiment("Probe status", ok_probe, extensions=ext))
    result = ctk.runpytest(*FAST, "-v")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines_random(
        [
            "*Lenient PASSED*",
            "*method action 'kubectl-apply' failed: process exited with status 3 (fail_on_exit_status): "
            "error: no such resource*",
            "*rollback 'undo' failed: process exited with status 4 (fail_on_exit_status): no output*",
        ]
    )
    write(
        ctk, "bad.experiment.json", experiment("Bad", [], extensions=[{"name": "resiliency", "fail_on_exit_status": 1}])
    )
    bad = ctk.runpytest(*FAST, "bad.experiment.json")
    bad.assert_outcomes(errors=1)
    bad.stdout.fnmatch_lines(
        ["*bad.experiment.json: extension 'resiliency': 'fail_on_exit_status' must be true or false*"]
    )


def test_a_second_ctrl_c_is_swallowed_while_rollbacks_run_and_the_reports_are_written(ctk: pytest.Pytester) -> None:
    started, rolling, rolled = ctk.path / "started", ctk.path / "rolling", ctk.path / "rolled"
    doc = experiment(
        "Interrupted twice",
        [action("long", "sleep", seconds=60, started=str(started))],
        rollbacks=[
            action("slow-undo", "sleep", seconds=1.5, started=str(rolling)),
            action("undo", "touch", path=str(rolled)),
        ],
    )
    write(ctk, "twice.experiment.json", doc)
    code = (
        "import signal, sys, pytest; signal.signal(signal.SIGINT, signal.default_int_handler); sys.exit(pytest.main())"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            *FAST,
            "-p",
            "no:cacheprovider",
            "--junitxml=junit.xml",
            "--resiliency-json=j.json",
        ],
        cwd=ctk.path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ctk.path), os.environ.get("PYTHONPATH")]))},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        while not rolling.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert rolling.exists(), "the rollbacks never started"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out.decode()
    assert proc.returncode == 2, text
    assert rolled.exists(), text  # the second Ctrl-C did not cut the rollbacks short
    assert "Ctrl-C again ignored: the experiment's rollbacks are running" in text, text
    assert "Traceback" not in text
    assert (ctk.path / "junit.xml").exists() and (ctk.path / "j.json").exists()


def test_a_deviated_experiment_is_one_word_everywhere_and_its_line_keeps_the_judged_status(
    ctk: pytest.Pytester,
) -> None:
    noisy = "x" * 800  # longer than a failure line shows (the report scrubber is slow on long tokens)
    check = process("health", f"echo {noisy}; exit 1", kind="probe", tolerance=0)
    doc = experiment("Deviates", [action("noop", "echo", value=1)], **{SSH: {"title": "healthy", "probes": [check]}})
    doc[SSH]["probes"][0]["provider"]["arguments"] = ["-c", f"test -e {ctk.path / 'broken'} && exit 1; echo {noisy}"]
    doc["method"] = [action("break", "touch", path=str(ctk.path / "broken"))]
    write(ctk, "deviates.experiment.json", doc)
    result = ctk.runpytest(*FAST, "--resiliency-json=j.json", "--junitxml=junit.xml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*steady state deviated after the method: probe 'health' returned status 1 (*"])
    entry = journal_of(ctk.path / "j.json")["deviates.experiment.json::Deviates"]
    assert entry["outcome"] == "breach"
    assert entry["verdict"]["line"].startswith("steady state deviated after the method")
    (case,) = ET.parse(ctk.path / "junit.xml").getroot().iter("testcase")
    assert case_figures(case)["resiliency.outcome"] == "breach"


def test_failure_lines_lead_with_what_the_tolerance_judged() -> None:
    from pytest_resiliency.ctk.runner import shown

    process_output = {"status": 2, "stdout": "x" * 5000, "stderr": "boom"}
    assert shown(process_output, 0).startswith("status 2 (")
    assert len(shown(process_output, [0, 1])) < 400
    assert shown(process_output, {"type": "regex", "target": "stderr", "pattern": "^ok"}) == "stderr 'boom'"
    long_text = "start " + "y" * 5000 + " the end"
    cut = shown(long_text, "ok")
    assert cut.startswith("'start ") and cut.endswith(" the end'") and "characters" in cut


# -- 6. --resiliency-ctk-var, --resiliency-ctk-var-file, dry run ---------------------------------------------


def test_vars_and_var_files_as_chaos_run_reads_them(ctk: pytest.Pytester) -> None:
    out = ctk.path / "out.txt"
    doc = experiment(
        "Configured",
        [action("write", "touch", path="${target}", text="${greeting} ${who} ${from_env}")],
        configuration={
            "target": "unset",
            "greeting": "hi",
            "who": "nobody",  # only declared keys take values, as in chaos run
            "from_env": {"type": "env", "key": "CTK_FROM_ENV"},
        },
    )
    write(ctk, "configured.experiment.json", doc)
    (ctk.path / "vars.json").write_text(json.dumps({"configuration": {"greeting": "hello", "who": "file"}}))
    (ctk.path / "vars.env").write_text("# a comment\nCTK_FROM_ENV=dotenv\n")
    result = ctk.runpytest(
        *FAST,
        f"--resiliency-ctk-var=target={out}",
        "--resiliency-ctk-var-file=vars.json",
        "--resiliency-ctk-var-file=vars.env",
    )
    result.assert_outcomes(passed=1)
    assert out.read_text() == "hello file dotenv"
    assert "CTK_FROM_ENV" not in os.environ
    bad = ctk.runpytest(*FAST, "--resiliency-ctk-var=count:int=many")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--resiliency-ctk-var 'count:int=many': cannot convert the value*"])
    missing = ctk.runpytest(*FAST, "--resiliency-ctk-var-file=nope.json")
    missing.stderr.fnmatch_lines(["*--resiliency-ctk-var-file nope.json: no such file*"])


def test_dry_run_validates_and_plans_without_executing(ctk: pytest.Pytester) -> None:
    acted = ctk.path / "acted"
    doc = experiment(
        "Planned",
        [action("act", "touch", path="${where}")],
        configuration={"where": str(acted)},
        rollbacks=[action("undo", "touch", path=str(ctk.path / "undone"))],
        **{SSH: {"title": "ok", "probes": [probe("ok", "echo", True, value=True)]}},
    )
    write(ctk, "planned.experiment.json", doc)
    write(
        ctk, "invalid.experiment.json", experiment("Invalid", [{"type": "action", "name": "x", "provider": py("nope")}])
    )
    result = ctk.runpytest(*FAST, "--resiliency-dry-run", "-rs")
    result.assert_outcomes(skipped=1, errors=1)  # the invalid one is still an error: it was validated
    result.stdout.fnmatch_lines_random(
        [
            "*--resiliency-dry-run: experiment valid, 4 activities planned, none executed*",
            "*planned.experiment.json::Planned*",
            f"*method: action 'act': python ctkprov.touch *{acted}*",
        ]
    )
    assert not acted.exists() and not (ctk.path / "undone").exists()
