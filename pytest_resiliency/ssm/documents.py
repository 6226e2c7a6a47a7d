"""Loading SSM Command documents (schemaVersion 2.2) and checking parameter values against them.

The shipped documents live in ``ssm_documents/`` (installed as the package
``pytest_resiliency.ssm_documents``); a document is named by its file stem
(``"cpu-stress"``) or given as a path. Parameter values are checked here exactly as
SSM would (``allowedValues``/``allowedPattern``) and, stricter than SSM, never contain
a control character: a value is substituted into a shell script.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

_PARAM_REF = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
SUFFIXES = (".yml", ".yaml", ".json")


class DocumentError(ConfigError):
    """A document that cannot be found or parsed, or parameter values it does not accept."""


def shipped_dir() -> Path:
    """Where the shipped documents are: the installed package, else the source checkout."""
    try:
        from importlib.resources import files

        found = Path(str(files("pytest_resiliency.ssm_documents")))
        if found.is_dir():
            return found
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parents[2] / "ssm_documents"


def shipped() -> dict[str, Path]:
    """Every shipped document: stem -> path."""
    root = shipped_dir()
    return {p.stem: p for p in sorted(root.iterdir()) if p.suffix in SUFFIXES} if root.is_dir() else {}


@dataclass(frozen=True)
class Step:
    name: str
    action: str
    timeout_seconds: int | None
    commands: tuple[str, ...]
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def script(self) -> str:
        return "\n".join(self.commands)


@dataclass(frozen=True)
class Document:
    """A parsed Command document; ``content`` is the text sent to SSM unchanged."""

    name: str
    content: str
    data: dict[str, Any]
    path: Path | None = None
    format: str = "YAML"

    @property
    def parameters(self) -> dict[str, dict[str, Any]]:
        params = self.data.get("parameters") or {}
        return params if isinstance(params, dict) else {}

    @property
    def steps(self) -> list[Step]:
        out = []
        for raw in self.data.get("mainSteps") or []:
            if not isinstance(raw, dict):
                continue
            inputs = raw.get("inputs") or {}
            commands = inputs.get("runCommand") or []
            timeout = inputs.get("timeoutSeconds")
            out.append(
                Step(
                    name=str(raw.get("name", "")),
                    action=str(raw.get("action", "")),
                    timeout_seconds=int(timeout)
                    if isinstance(timeout, (int, str)) and str(timeout).isdigit()
                    else None,
                    commands=tuple(str(c) for c in commands) if isinstance(commands, list) else (str(commands),),
                    raw=raw,
                )
            )
        return out

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content.encode()).hexdigest()

    @property
    def ssm_name(self) -> str:
        """The name it is created under in SSM: stable per content, so an edited document is a new one."""
        return f"PytestResiliency-{re.sub(r'[^A-Za-z0-9_.-]', '-', self.name)}-{self.sha256[:8]}"

    def references(self) -> set[str]:
        return {m.group(1) for step in self.steps for c in step.commands for m in _PARAM_REF.finditer(c)}

    def values(self, given: dict[str, Any] | None = None) -> dict[str, str]:
        """Defaults overlaid with ``given``, each checked; ``DocumentError`` names every bad one."""
        given = dict(given or {})
        accepted = ", ".join(sorted(self.parameters)) or "none"
        errors = [f"unknown parameter {k!r} (accepted: {accepted})" for k in given if k not in self.parameters]
        values: dict[str, str] = {}
        for name, spec in self.parameters.items():
            if name in given:
                raw = given[name]
                if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
                    errors.append(f"{name}={raw!r} must be a string or a number")
                    continue
                value = str(raw)
            elif "default" in spec:
                value = str(spec["default"])
            else:
                errors.append(f"{name} is required ({describe_constraint(spec)})")
                continue
            problem = check_value(spec, value)
            if problem:
                errors.append(f"{name}={value!r} {problem}")
            else:
                values[name] = value
        if errors:
            raise DocumentError(f"SSM document {self.name}: " + "; ".join(errors))
        return values

    def render(self, values: dict[str, str]) -> list[tuple[Step, str]]:
        """Each step's script with ``{{ param }}`` replaced (values already checked by :meth:`values`)."""

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in values:
                raise DocumentError(f"SSM document {self.name}: {{{{ {name} }}}} is not a declared parameter")
            return values[name]

        return [(step, _PARAM_REF.sub(sub, step.script)) for step in self.steps]


def describe_constraint(spec: dict[str, Any]) -> str:
    if "allowedValues" in spec:
        return "one of " + ", ".join(map(str, spec["allowedValues"]))
    if "allowedPattern" in spec:
        return f"matching {spec['allowedPattern']}"
    return "any value"


def check_value(spec: dict[str, Any], value: str) -> str | None:
    """Why ``value`` is refused for a parameter with this spec, or ``None`` when it is accepted."""
    if _CONTROL.search(value):
        return "contains a control character (newline, tab...), never accepted in a shell parameter"
    allowed = spec.get("allowedValues")
    if allowed is not None and value not in [str(v) for v in allowed]:
        return f"is not one of {', '.join(map(str, allowed))}"
    pattern = spec.get("allowedPattern")
    if pattern is not None and not re.fullmatch(str(pattern), value):
        return f"does not match {pattern}"
    if allowed is None and pattern is None:
        return "cannot be checked: the parameter has neither allowedValues nor allowedPattern"
    return None


def parse(text: str, name: str, path: Path | None = None) -> Document:
    """A document from its text (YAML or JSON)."""
    import yaml  # type: ignore[import-untyped,unused-ignore]

    stripped = text.lstrip()
    fmt = "JSON" if stripped.startswith("{") else "YAML"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DocumentError(f"SSM document {name}: not valid {fmt}: {exc}") from None
    if not isinstance(data, dict):
        raise DocumentError(f"SSM document {name}: the top level must be a mapping, got {type(data).__name__}")
    return Document(name=name, content=text, data=data, path=path, format=fmt)


def load(name_or_path: str | Path) -> Document:
    """A shipped document by stem (``"cpu-stress"``) or a document file by path."""
    path = Path(name_or_path)
    if not path.is_file():
        found = shipped().get(str(name_or_path))
        if found is None:
            raise DocumentError(
                f"SSM document {str(name_or_path)!r} is neither a file nor a shipped document "
                f"({', '.join(shipped()) or 'none found'})"
            )
        path = found
    return parse(path.read_text(encoding="utf-8"), path.stem, path)


def find(name_or_path: str | Path) -> Document | None:
    """Like :func:`load`, but ``None`` for a name that may be an existing SSM document (``AWSFIS-...``)."""
    path = Path(name_or_path)
    if path.is_file() or str(name_or_path) in shipped():
        return load(name_or_path)
    if path.suffix in SUFFIXES or "/" in str(name_or_path):
        raise DocumentError(f"SSM document file {str(name_or_path)!r} does not exist")
    return None
