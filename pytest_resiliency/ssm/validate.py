"""Static validation of SSM Command documents: what SSM would refuse, and what would be unsafe.

Checks: schemaVersion 2.2 and the shape of every step; every ``{{ param }}`` declared
and every declared parameter used; every parameter constrained by ``allowedValues`` or an
anchored ``allowedPattern`` that rejects shell metacharacters; defaults accepted by their
own constraint; step ``timeoutSeconds`` above the longest accepted duration plus install
time; ``bash -n`` on each script with the defaults substituted. With ``conventions=True``
(the shipped fault documents) also: rollback by trap, a rollback script, a dead-man switch,
refusal of a second concurrent fault, installs for Amazon Linux/RHEL and Debian/Ubuntu.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from .documents import Document, DocumentError, check_value

INSTALL_ALLOWANCE = 300  # seconds a step may spend installing its tools before the fault starts
DURATION_PARAMETER = "DurationSeconds"
# Values that must never reach a shell: each is refused by every parameter's constraint.
INJECTIONS = (
    "; rm -rf /",
    "1; rm -rf /",
    "$(id)",
    "1$(id)",
    "`id`",
    "1`id`",
    "1\nid",
    "1\n",
    "\nid",
    "1 && id",
    "1 || id",
    "1|id",
    "1&",
    "1>/etc/passwd",
    "1</etc/passwd",
    "1'",
    '1"',
    "1\\",
    "1 id",
    "${IFS}",
    "1*",
    "{a,b}",
    "1\x00",
)
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.,:/=+@%-]*$")
CONVENTIONS = {
    "rollback by trap on INT and TERM": re.compile(r"trap .* INT\b[\s\S]*trap .* TERM\b|trap .*INT TERM"),
    "rollback on EXIT": re.compile(r"trap \S+ EXIT|trap '.*' EXIT"),
    "a rollback script": re.compile(r"ROLLBACK="),
    "a dead-man switch (heartbeat + detached reverter)": re.compile(r"HEARTBEAT[\s\S]*setsid"),
    "refusal of a second concurrent fault": re.compile(r"refused: another fault"),
    "installs on Debian/Ubuntu (apt-get)": re.compile(r"apt-get"),
    "installs on Amazon Linux/RHEL (dnf/yum)": re.compile(r"\bdnf\b[\s\S]*\byum\b"),
}


def max_accepted(spec: dict[str, Any], limit: int = 100_000) -> int | None:
    """The largest whole number the parameter accepts (brute force up to ``limit``), ``None`` if none."""
    best = None
    for n in range(limit + 1):
        if check_value(spec, str(n)) is None:
            best = n
    return best


def _pattern_problems(name: str, spec: dict[str, Any]) -> list[str]:
    problems = []
    pattern = spec.get("allowedPattern")
    if pattern is not None:
        try:
            compiled = re.compile(str(pattern))
        except re.error as exc:
            return [f"parameter {name}: allowedPattern {pattern!r} does not compile: {exc}"]
        if not (str(pattern).startswith("^") and str(pattern).endswith("$")):
            problems.append(f"parameter {name}: allowedPattern {pattern!r} must be anchored with ^ and $")
        for bad in INJECTIONS:
            # SSM matches the whole value; a search must not accept it either, except that `$`
            # also matches before a final newline (scripts quote every value, so that one is inert)
            if compiled.fullmatch(bad) or (compiled.search(bad) and not bad.endswith("\n")):
                problems.append(f"parameter {name}: allowedPattern {pattern!r} accepts {bad!r}")
    for value in spec.get("allowedValues") or []:
        if not _SAFE_VALUE.match(str(value)):
            problems.append(f"parameter {name}: allowedValues entry {value!r} contains a shell metacharacter")
    return problems


def validate(doc: Document, *, conventions: bool = False, bash: str = "bash") -> list[str]:
    """Every problem found in ``doc`` (empty when it is valid)."""
    data = doc.data
    problems = []
    if str(data.get("schemaVersion")) != "2.2":
        problems.append(f"schemaVersion is {data.get('schemaVersion')!r}, expected '2.2'")
    if not isinstance(data.get("description"), str) or not data["description"].strip():
        problems.append("description is missing")
    params = data.get("parameters", {})
    if not isinstance(params, dict):
        return [*problems, "parameters must be a mapping"]
    for name, spec in params.items():
        if not isinstance(spec, dict):
            problems.append(f"parameter {name}: must be a mapping")
            continue
        if spec.get("type") != "String":
            problems.append(f"parameter {name}: type {spec.get('type')!r}, only String is accepted")
        if "allowedPattern" not in spec and "allowedValues" not in spec:
            problems.append(f"parameter {name}: has neither allowedPattern nor allowedValues")
        if not spec.get("description"):
            problems.append(f"parameter {name}: description is missing")
        problems += _pattern_problems(name, spec)
        if "default" in spec:
            why = check_value(spec, str(spec["default"]))
            if why:
                problems.append(f"parameter {name}: default {spec['default']!r} {why}")
    steps = data.get("mainSteps")
    if not isinstance(steps, list) or not steps:
        return [*problems, "mainSteps must be a non-empty list"]
    names = [s.get("name") for s in steps if isinstance(s, dict)]
    if len(set(names)) != len(names):
        problems.append("step names must be unique")
    longest = None
    if DURATION_PARAMETER in params and isinstance(params[DURATION_PARAMETER], dict):
        longest = max_accepted(params[DURATION_PARAMETER])
        if longest is None:
            problems.append(f"parameter {DURATION_PARAMETER}: accepts no whole number")
    for step in doc.steps:
        where = f"step {step.name or '?'}"
        if step.action != "aws:runShellScript":
            problems.append(f"{where}: action {step.action!r}, only aws:runShellScript is supported")
        if not _NAME.match(step.name):
            problems.append(f"{where}: name must match {_NAME.pattern}")
        if not isinstance(step.raw.get("inputs", {}).get("runCommand"), list):
            problems.append(f"{where}: inputs.runCommand must be a list of strings")
        if step.timeout_seconds is None:
            problems.append(f"{where}: inputs.timeoutSeconds is missing")
        elif longest is not None and step.timeout_seconds <= longest + INSTALL_ALLOWANCE:
            problems.append(
                f"{where}: timeoutSeconds {step.timeout_seconds} must exceed the longest {DURATION_PARAMETER} "
                f"({longest}) plus install time ({INSTALL_ALLOWANCE})"
            )
    refs = doc.references()
    problems += [f"{{{{ {r} }}}} is used but not declared" for r in sorted(refs - set(params))]
    problems += [f"parameter {p} is declared but never used" for p in sorted(set(params) - refs)]
    if not problems:
        problems += _bash_syntax(doc, bash)
    if conventions:
        script = "\n".join(s.script for s in doc.steps)
        problems += [f"does not have {what}" for what, rx in CONVENTIONS.items() if not rx.search(script)]
    return problems


def _sample_values(doc: Document) -> dict[str, str]:
    """Defaults, or for a required parameter the first allowed value / a value its pattern accepts."""
    out = {}
    for name, spec in doc.parameters.items():
        if "default" in spec:
            out[name] = str(spec["default"])
        elif spec.get("allowedValues"):
            out[name] = str(spec["allowedValues"][0])
        else:
            out[name] = next((c for c in ("1", "a", "/tmp", "eth0") if check_value(spec, c) is None), "x")
    return out


def _bash_syntax(doc: Document, bash: str) -> list[str]:
    try:
        rendered = doc.render(doc.values(_sample_values(doc)))
    except DocumentError as exc:
        return [str(exc)]
    problems = []
    with tempfile.TemporaryDirectory(prefix="ssm-validate-") as tmp:
        for step, script in rendered:
            path = Path(tmp) / f"{step.name or 'step'}.sh"
            path.write_text(script, encoding="utf-8")
            result = subprocess.run([bash, "-n", str(path)], capture_output=True, text=True, timeout=30, check=False)
            if result.returncode != 0:
                problems.append(f"step {step.name}: bash -n: {result.stderr.strip()}")
    return problems
