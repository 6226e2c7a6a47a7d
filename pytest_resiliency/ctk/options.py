"""Command-line and ini settings of experiment items: the ``chaos run`` flags that change a run.

``--resiliency-ctk-hypothesis-strategy``, ``--resiliency-ctk-hypothesis-frequency``, ``--resiliency-ctk-fail-fast`` and
``--resiliency-ctk-rollback-strategy`` override an experiment's ``runtime`` block (as the same flags of
``chaos run`` do); ``--resiliency-ctk-var`` and ``--resiliency-ctk-var-file`` (or the ini options
``resiliency_ctk_vars``/``resiliency_ctk_var_files``) give configuration and secret values.

Parsed and checked once at start-up, with the standard library only (chaoslib is not imported
until an experiment runs): a bad value is a usage error naming the option and what is accepted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .spec import Runtime

VAR_TYPES = ("str", "string", "int", "integer", "float", "number", "bytes", "bool", "json")


@dataclass(frozen=True)
class CtkOptions:
    """What the command line adds to every experiment of the run."""

    hypothesis_strategy: str | None = None
    frequency: float | None = None
    fail_fast: bool | None = None
    fail_fast_ratio: float | None = None
    rollback_strategy: str | None = None
    config_vars: dict[str, Any] = field(default_factory=dict)
    secret_vars: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # from .env var files, exported while an item runs
    control_files: list[str] = field(default_factory=list)  # global controls, as chaos run --control-file

    def runtime(self, declared: Runtime) -> Runtime:
        """The experiment's runtime with the command line's overrides (the command line wins, as in ``chaos run``)."""
        changes: dict[str, Any] = {}
        if self.hypothesis_strategy is not None:
            changes["hypothesis_strategy"] = self.hypothesis_strategy
        if self.frequency is not None:
            changes["frequency"] = self.frequency
        if self.fail_fast is not None:
            changes["fail_fast"] = self.fail_fast
            changes["fail_fast_ratio"] = self.fail_fast_ratio or 0.0
        if self.rollback_strategy is not None:
            changes["rollback_strategy"] = self.rollback_strategy
        return replace(declared, **changes)


OPTIONS = pytest.StashKey[CtkOptions]()


def convert(name: str, kind: str, value: str) -> Any:
    """chaoslib's ``convert_to_type``, without importing chaoslib at start-up."""
    if kind in ("str", "string"):
        return value
    if kind in ("int", "integer"):
        return int(value)
    if kind in ("float", "number"):
        return float(value)
    if kind == "bytes":
        return value.encode("utf-8")
    if kind == "bool":
        return value.lower() not in ("false", "0", "no")
    if kind == "json":
        return json.loads(value) if value else value
    raise ValueError(f"type {kind!r} of {name!r} is not one of {', '.join(VAR_TYPES)}")


def parse_var(text: str, where: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise pytest.UsageError(f"{where} {text!r}: expected NAME=VALUE or NAME:TYPE=VALUE")
    kind = "str"
    if ":" in name:
        name, kind = name.rsplit(":", 1)
    try:
        return name.strip(), convert(name, kind, value)
    except ValueError as exc:
        raise pytest.UsageError(f"{where} {text!r}: cannot convert the value: {exc}") from None


def read_var_file(path: Path, where: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """(configuration, secrets, environment) from one var file, as chaoslib's ``merge_vars`` reads it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise pytest.UsageError(f"{where} {path}: cannot read it: {exc}") from None
    if path.suffix in (".json", ".yaml", ".yml"):
        try:
            if path.suffix == ".json":
                data = json.loads(text) if text.strip() else {}
            else:
                import yaml

                data = yaml.safe_load(text) or {}
        except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError
            kind = "JSON" if path.suffix == ".json" else "YAML"
            raise pytest.UsageError(f"{where} {path}: not valid {kind}: {exc}") from None
        if not isinstance(data, dict) or not set(data) <= {"configuration", "secrets"}:
            raise pytest.UsageError(f"{where} {path}: expected a mapping with 'configuration' and/or 'secrets'")
        config, secrets = data.get("configuration") or {}, data.get("secrets") or {}
        if not isinstance(config, dict) or not isinstance(secrets, dict):
            raise pytest.UsageError(f"{where} {path}: 'configuration' and 'secrets' must be mappings")
        return config, secrets, {}
    env: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise pytest.UsageError(f"{where} {path}:{number}: expected NAME=VALUE in a .env file")
        env[key.strip()] = value
    return {}, {}, env


def _spec() -> Any:
    """The experiment parser's checks, loaded only when a runtime option is given (start-up stays light)."""
    from . import spec

    return spec


def parse(config: pytest.Config) -> CtkOptions:
    """Check every option; raise :class:`pytest.UsageError` naming the bad one."""
    try:
        strategy = config.getoption("resiliency_ctk_hypothesis_strategy")
        rollbacks = config.getoption("resiliency_ctk_rollback_strategy")
        every = config.getoption("resiliency_ctk_hypothesis_frequency")
        fast = config.getoption("resiliency_ctk_fail_fast")
        ratio = config.getoption("resiliency_ctk_fail_fast_ratio")
        fast_ratio: tuple[bool, float] | None = None
        if fast or ratio is not None:
            try:
                number = float(ratio) if ratio is not None else 0.0
            except ValueError:
                number = -1.0
            fast_ratio = _spec().fail_fast(number, "--resiliency-ctk-fail-fast-ratio")
        options = CtkOptions(
            hypothesis_strategy=None
            if strategy is None
            else _spec().hypothesis_strategy(strategy, "--resiliency-ctk-hypothesis-strategy"),
            frequency=None if every is None else _spec().frequency(every, "--resiliency-ctk-hypothesis-frequency"),
            fail_fast=None if fast_ratio is None else fast_ratio[0],
            fail_fast_ratio=None if fast_ratio is None else fast_ratio[1],
            rollback_strategy=None
            if rollbacks is None
            else _spec().rollback_strategy(rollbacks, "--resiliency-ctk-rollback-strategy"),
        )
    except ValueError as exc:
        raise pytest.UsageError(f"pytest-resiliency option: {exc}") from None
    root = config.rootpath
    files = [(root / p, "ini resiliency_ctk_var_files") for p in config.getini("resiliency_ctk_var_files")]
    files += [(Path(p), "--resiliency-ctk-var-file") for p in config.getoption("resiliency_ctk_var_file")]
    for path, where in files:
        if not path.is_file():
            raise pytest.UsageError(f"{where} {path}: no such file")
        conf, secrets, env = read_var_file(path, where)
        options.config_vars.update(conf)
        options.secret_vars.update(secrets)
        options.env.update(env)
    controls = [(root / p, "ini resiliency_ctk_control_files") for p in config.getini("resiliency_ctk_control_files")]
    controls += [(Path(p), "--resiliency-ctk-control-file") for p in config.getoption("resiliency_ctk_control_file")]
    for path, where in controls:
        if not path.is_file():
            raise pytest.UsageError(f"{where} {path}: no such file")
        if path.suffix not in (".json", ".yaml", ".yml"):
            raise pytest.UsageError(f"{where} {path}: a control file is .json, .yaml or .yml")
        options.control_files.append(str(path.resolve()))
    for text in config.getini("resiliency_ctk_vars"):
        name, value = parse_var(text, "ini resiliency_ctk_vars")
        options.config_vars[name] = value
    for text in config.getoption("resiliency_ctk_var"):
        name, value = parse_var(text, "--resiliency-ctk-var")
        options.config_vars[name] = value
    return options


def options_of(config: pytest.Config) -> CtkOptions:
    found = config.stash.get(OPTIONS, None)
    if found is None:
        found = config.stash[OPTIONS] = parse(config)
    return found
