"""The public experiment corpus (tests/ctk_corpus, sources and licences in its README): every file
runs as a pytest item against loopback stand-ins of the systems it was written for, and its
verdict is the one its author intends.

One pytest subprocess runs the whole corpus (a safeguard signals its process, as in ``chaos
run``); the outcome of each item is read from the JUnit XML and the JSON journal.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

CORPUS = Path(__file__).parent / "ctk_corpus"
FAST = ["-p", "no:locust", "-p", "no:benchmark", "-p", "no:hypothesispytest", "-p", "no:html", "-p", "no:metadata"]

# file -> (pytest outcome, why the author intends it)
INTENDED = {
    "ctk-check-file-exists": ("passed", "the file is there before and after touching it"),
    "ctk-check-file-exists-deviated": ("failed", "removing the file deviates the hypothesis"),
    "ctk-check-file-exists-fail": ("error", "the hypothesis probe raises: nothing may run"),
    "ctk-override-hypothesis-runtime-strategy": ("passed", "before-method-only: no after-check"),
    "ctk-override-rollbacks-runtime-strategy": ("passed", "rollbacks never played"),
    "ctk-invalid-plan": ("error", "an experiment without a method is invalid"),
    "lib-experiment": ("passed", "every probe within tolerance, rollback by ref"),
    "lib-various-tolerances": ("passed", "boolean, probe, status, regex body, exit status, stdout tolerances"),
    "lib-deviation-before-method": ("error", "status 200 is not the 500 the hypothesis wants: not steady"),
    "lib-ref-probe": ("passed", "a ref to a method probe"),
    "lib-failing-hypothesis": ("error", "echo exits 0, the hypothesis wants 1: not steady"),
    "lib-failed-action-and-rollback": ("failed", "the action fails (chaos run: completed, exit 0)"),
    "lib-interrupted-by-control": ("error", "a control interrupts the experiment"),
    "lib-background-activity": ("passed", "a background and a foreground action"),
    "doc-tolerance-english": ("failed", "switching to French deviates the English hypothesis"),
    "doc-minimal-experiment": ("passed", "the application re-creates the removed file"),
    "doc-complex-experiment": ("passed", "one of two function instances lost, users not impacted"),
    "doc-tolerance-scenarios": ("passed", "every tolerance scenario of the tutorial holds"),
    "playground-chapter5-service": ("failed", "the fragile service answers 500 without its file"),
    "playground-chapter5-resilient-service": ("passed", "the resilient service answers 503"),
    "addons-safeguard": ("error", "the safeguard trips once the method makes the system unhealthy"),
}

SUPPORT = {
    # what chaostoolkit's own fixtures expect next to them (``tests/...`` relative to the working directory)
    "tests/__init__.py": "",
    "tests/conftest.py": "",
    "tests/fixtures/__init__.py": "",
    "tests/fixtures/force_failure.py": "def kaboom():\n    raise RuntimeError('kaboom')\n",
}


def _outcomes(junit: Path) -> dict[str, str]:
    """file stem -> passed/failed/error/skipped (an error in any phase wins, then a failure)."""
    found: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        stem = str(case.get("classname", "")).split(".experiment.")[0]
        kinds = {child.tag for child in case}
        outcome = (
            "error"
            if "error" in kinds
            else "failed"
            if "failure" in kinds
            else "skipped"
            if "skipped" in kinds
            else "passed"
        )
        found[stem] = outcome
    return found


@pytest.mark.slow
def test_every_corpus_experiment_gets_the_verdict_its_author_intends(pytester: pytest.Pytester) -> None:
    files = sorted(p for p in CORPUS.iterdir() if p.suffix in (".json", ".yaml"))
    assert len(files) >= 15
    assert {p.stem for p in files} == set(INTENDED)
    for path in files:
        shutil.copy(path, pytester.path / f"{path.stem}.experiment{path.suffix}")
    for name in ("corpus_providers.py", "corpus_interrupter.py"):
        shutil.copy(CORPUS / name, pytester.path / name)
    shutil.copy(CORPUS / "corpus_conftest.py", pytester.path / "conftest.py")
    for name, text in SUPPORT.items():
        (pytester.path / name).parent.mkdir(parents=True, exist_ok=True)
        (pytester.path / name).write_text(text)
    pytester.makeini("[pytest]\nresiliency_experiment_files = *.experiment.json\n")
    result = pytester.runpytest_subprocess(
        *FAST, "-p", "no:cacheprovider", "--junitxml=junit.xml", "--resiliency-json=j.json", "-rfE", timeout=240
    )
    outcomes = _outcomes(pytester.path / "junit.xml")
    wrong = {
        stem: (outcomes.get(stem), intended, why)
        for stem, (intended, why) in INTENDED.items()
        if outcomes.get(stem) != intended
    }
    assert not wrong, result.stdout.str()[-6000:]

    journal = {
        t["nodeid"].split(".experiment.")[0]: t for t in json.loads((pytester.path / "j.json").read_text())["tests"]
    }
    ctk = {stem: entry["attachments"]["ctk-journal"] for stem, entry in journal.items()}
    assert ctk["ctk-override-hypothesis-runtime-strategy"]["steady_states"]["after"] is None
    assert ctk["ctk-override-rollbacks-runtime-strategy"]["rollbacks"] == []
    assert ctk["ctk-override-rollbacks-runtime-strategy"]["rollbacks_skipped"] == "runtime.rollbacks.strategy=never"
    assert [r["status"] for r in ctk["lib-failed-action-and-rollback"]["rollbacks"]] == ["succeeded"]
    assert journal["lib-failed-action-and-rollback"]["outcome"] == "breach"
    safeguard = ctk["addons-safeguard"]
    assert safeguard["status"] == "interrupted" and "safeguard" in safeguard["interrupted_by"]
    assert [r["status"] for r in safeguard["rollbacks"]] == ["succeeded"]
    assert journal["addons-safeguard"]["outcome"] == "aborted"
    assert not (pytester.path / "data" / "never-reached").exists()
    complex_text = json.dumps(journal["doc-complex-experiment"])
    assert "Basic XYZ" not in complex_text  # the inline secret of the documentation's example
    assert ctk["doc-complex-experiment"]["experiment"]["secrets"] == {"global": {"auth": "[redacted]"}}
    assert journal["doc-complex-experiment"]["summary"]["operations"] >= 4  # probe runs are evidence
