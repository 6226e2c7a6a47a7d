"""Static validation of the shipped SSM documents, and parameter injection refused everywhere."""

from __future__ import annotations

import re
import textwrap

import pytest

from pytest_resiliency.ssm import documents
from pytest_resiliency.ssm.documents import DocumentError, parse
from pytest_resiliency.ssm.validate import INJECTIONS, validate

SHIPPED = sorted(documents.shipped())
EXPECTED = {
    "blackhole-port",
    "cpu-stress",
    "disk-fill",
    "io-stress",
    "kill-process",
    "memory-stress",
    "network-latency",
    "packet-loss",
    "pause-process",
}


def test_every_document_is_shipped() -> None:
    assert set(SHIPPED) == EXPECTED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_document_is_valid(name: str) -> None:
    assert validate(documents.load(name), conventions=True) == []


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("bad", ["; rm -rf /", "$(id)", "`id`", "1\nid", "60\n", "1 && id"])
def test_injection_is_refused_by_the_patterns_and_the_runner(name: str, bad: str) -> None:
    doc = documents.load(name)
    for param, spec in doc.parameters.items():
        pattern = spec.get("allowedPattern")
        if pattern:
            assert not re.fullmatch(pattern, bad), f"{name}.{param} pattern accepts {bad!r}"
        else:
            assert bad not in spec["allowedValues"]
        with pytest.raises(DocumentError, match=f"{param}="):
            doc.values({**_required(doc), param: bad})


def _required(doc: documents.Document) -> dict[str, str]:
    return {n: "nginx" if "Process" in n else "8080" for n, s in doc.parameters.items() if "default" not in s}


def _doc(params: str, script: str, timeout: int = 4200) -> documents.Document:
    text = textwrap.dedent(
        f"""\
        schemaVersion: '2.2'
        description: test
        parameters:
        {textwrap.indent(textwrap.dedent(params), "  ")}
        mainSteps:
          - action: aws:runShellScript
            name: Main
            inputs:
              timeoutSeconds: {timeout}
              runCommand:
                - |
                  {script}
        """
    )
    return parse(text, "test")


GOOD = "D: {type: String, default: '5', allowedPattern: '^[0-9]{1,3}$', description: d}"


def test_a_good_minimal_document_passes() -> None:
    assert validate(_doc(GOOD, "sleep '{{ D }}'")) == []


@pytest.mark.parametrize(
    ("params", "script", "timeout", "problem"),
    [
        (GOOD, "sleep '{{ E }}' '{{ D }}'", 4200, "{{ E }} is used but not declared"),
        (GOOD, "sleep 1", 4200, "parameter D is declared but never used"),
        ("D: {type: String, default: '5', description: d}", "sleep '{{ D }}'", 4200, "neither allowedPattern nor"),
        ("D: {type: String, allowedPattern: '[0-9;]+', description: d}", "s '{{ D }}'", 4200, "must be anchored"),
        ("D: {type: String, allowedPattern: '^.+$', description: d}", "s '{{ D }}'", 4200, "accepts '; rm -rf /'"),
        (
            "D: {type: String, default: 'x', allowedPattern: '^[0-9]+$', description: d}",
            "s '{{ D }}'",
            4200,
            "default 'x' does not match",
        ),
        (
            "D: {type: String, default: 'a b', allowedValues: ['a b'], description: d}",
            "s '{{ D }}'",
            4200,
            "contains a shell metacharacter",
        ),
        (
            "DurationSeconds: {type: String, default: '5', allowedPattern: '^[0-9]{1,4}$', description: d}",
            "sleep '{{ DurationSeconds }}'",
            4200,
            "timeoutSeconds 4200 must exceed the longest DurationSeconds (9999)",
        ),
        (GOOD, "if then '{{ D }}'", 4200, "bash -n"),
    ],
)
def test_validator_finds_problems(params: str, script: str, timeout: int, problem: str) -> None:
    problems = validate(_doc(params, script, timeout))
    assert any(problem in p for p in problems), problems


def test_conventions_are_checked() -> None:
    problems = validate(_doc(GOOD, "sleep '{{ D }}'"), conventions=True)
    assert any("dead-man switch" in p for p in problems) and any("rollback by trap" in p for p in problems)


def test_every_injection_sample_is_refused_by_a_typical_pattern() -> None:
    spec = {"allowedPattern": "^[A-Za-z0-9._-]{1,15}$"}
    assert all(documents.check_value(spec, bad) for bad in INJECTIONS)


def test_unknown_and_missing_parameters_are_clear_errors() -> None:
    doc = documents.load("kill-process")
    with pytest.raises(DocumentError, match="ProcessName is required"):
        doc.values({})
    with pytest.raises(DocumentError, match="unknown parameter 'Pid'"):
        doc.values({"ProcessName": "x", "Pid": 1})
    with pytest.raises(DocumentError, match="neither a file nor a shipped document"):
        documents.load("no-such-document")
