"""Malformed and hostile experiment files: one clear collection error each, never a crash or a hang (issue 21).

Before: a 100,000-deep ``[[[...`` was a ``RecursionError`` (in the sniffer it took down the
collection of the whole directory), a YAML alias bomb loaded and then hung the run, a wrong
block shape was an ``AttributeError`` deep in chaoslib, a 5,000-digit number a ``ValueError``
traceback, and a 20 MB file was read whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_resiliency.ctk import limits
from pytest_resiliency.ctk.spec import SpecError, load

FAST = ["-p", "no:locust", "-p", "no:benchmark", "-p", "no:hypothesispytest", "-p", "no:html", "-p", "no:metadata"]
GOOD: dict[str, Any] = {"version": "1.0.0", "title": "Fine", "description": "d", "method": []}


def alias_bomb() -> str:
    """Billion laughs: nine levels of nine aliases each, 9**9 strings once expanded, 400 bytes on disk."""
    text = "title: bomb\ndescription: d\nmethod: []\na: &a [" + ", ".join(['"lol"'] * 9) + "]\n"
    previous = "a"
    for name in "bcdefghi":
        text += f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]\n"
        previous = name
    return text + "configuration: {bomb: *i}\n"


DEEP = "[" * 100_000 + "]" * 100_000
MALFORMED: dict[str, tuple[str, str]] = {
    # file name: (content, what the one error line says)
    "deep.experiment.json": ('{"title": "x", "method": ' + DEEP + "}", "nested deeper than 64"),
    "deep900.experiment.json": ('{"title": "x", "method": [' + "[" * 900 + "]" * 900 + "]}", "nested deeper than 64"),
    "deep.experiment.yaml": ("title: x\nmethod: " + DEEP + "\n", "nested deeper than 64"),
    "bomb.experiment.yaml": (alias_bomb(), "more than 100,000 values once YAML aliases are expanded"),
    "cycle.experiment.yaml": ("title: x\nmethod: []\nconfiguration: &c {self: *c}\n", "contains itself"),
    "huge.experiment.json": (
        json.dumps({"title": "x", "method": [], "description": "A" * 20_000_000}),
        "an experiment file may have at most 1,048,576 bytes",
    ),
    "digits.experiment.json": (
        '{"title": "x", "method": [], "configuration": {"n": ' + "9" * 5000 + "}}",
        "a number with more than 4,300 digits",
    ),
    "digits.experiment.yaml": ("title: x\nmethod: []\nn: " + "9" * 5000 + "\n", "a number with more than 4,300 digits"),
    "method.experiment.json": (json.dumps({**GOOD, "method": [1]}), "'method' must be a list of mappings"),
    "hypothesis.experiment.json": (
        json.dumps({**GOOD, "steady-state-hypothesis": []}),
        "'steady-state-hypothesis' must be a mapping",
    ),
    "configuration.experiment.json": (json.dumps({**GOOD, "configuration": []}), "'configuration' must be a mapping"),
    "vault.experiment.json": (json.dumps({**GOOD, "secrets": {"aws": 5}}), "must be a mapping of secret names"),
    "rollbacks.experiment.json": (json.dumps({**GOOD, "rollbacks": {}}), "'rollbacks' must be a list of mappings"),
    "rto.experiment.json": (
        json.dumps({**GOOD, "extensions": [{"name": "resiliency", "rto": 10**400}]}),
        "rto=1000000000",
    ),
}


def test_each_malformed_file_is_one_clear_collection_error_for_that_file_only(pytester: pytest.Pytester) -> None:
    for name, (content, _) in MALFORMED.items():
        (pytester.path / name).write_text(content)
    (pytester.path / "good.experiment.json").write_text(json.dumps(GOOD))
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess(*FAST, "-q", "--continue-on-collection-errors", "-rE", timeout=120)
    out = result.stdout.str() + result.stderr.str()
    for crash in ("RecursionError", "AttributeError", "OverflowError", "INTERNALERROR", "Traceback"):
        assert crash not in out, out[-3000:]
    result.assert_outcomes(errors=len(MALFORMED), passed=2)  # the plain test and "Fine" ran
    summary = [line for line in result.stdout.lines if line.startswith("ERROR ")]
    assert len(summary) == len(MALFORMED), summary
    for name, (_, message) in MALFORMED.items():
        assert [line for line in result.stdout.lines if name in line and message in line], f"{name}: {message}"


def test_limits_refuse_before_reading_or_walking_everything(tmp_path: Path) -> None:
    big = tmp_path / "big.experiment.json"
    big.write_bytes(b" " * (limits.MAX_BYTES + 1))
    with pytest.raises(SpecError, match="at most 1,048,576 bytes"):
        load(big)
    # a structure exactly at the limits is fine; one level more is refused
    nested: Any = []
    for _ in range(limits.MAX_DEPTH - 2):  # with the mapping around it: 64 levels
        nested = [nested]
    limits.check_shape({"method": nested}, tmp_path)
    with pytest.raises(limits.LimitError, match="nested deeper than 64 levels"):
        limits.check_shape({"method": [nested]}, tmp_path)
    shared = ["x"] * 1000
    limits.check_shape([shared] * 99, tmp_path)  # 99,100 values: under the limit
    with pytest.raises(limits.LimitError, match="more than 100,000 values"):
        limits.check_shape([shared] * 100, tmp_path)


def test_limits_are_config_errors_users_can_catch() -> None:
    from pytest_resiliency.errors import ConfigError

    assert issubclass(limits.LimitError, ConfigError) and issubclass(SpecError, ConfigError)
