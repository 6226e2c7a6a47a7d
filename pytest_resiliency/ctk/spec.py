"""Reading a Chaos Toolkit experiment file into what collection needs: title, markers, budget.

Only JSON/YAML parsing and our own checks here (chaoslib validates the activities when the
item runs), so collecting a directory of experiment files stays cheap and works without
chaostoolkit-lib installed. Every problem is a :class:`SpecError` naming the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..budget import BudgetError, Criteria, parse_marker
from ..errors import ConfigError
from . import limits
from .strategies import HYPOTHESIS_STRATEGIES, ROLLBACK_STRATEGIES

EXTENSION_NAME = "resiliency"
# Keys of the ``resiliency`` extension beyond the marker's own arguments.
EXTENSION_KEYS = ("name", "fixtures", "fail_on_exit_status")
_RUNTIME_KEYS = {"hypothesis": ("strategy", "frequency", "fail_fast"), "rollbacks": ("strategy",)}
_TAG_CHARS = re.compile(r"[^\w.\-]+")


class SpecError(ConfigError):
    """An experiment file that cannot become a test; the message names the file and the problem."""


@dataclass(frozen=True)
class Runtime:
    """The experiment's ``runtime`` block, as ``chaos run`` reads it (the command line may override it).

    ``fail_fast_ratio`` is chaoslib's: the percentage of deviated during-checks at which the
    experiment stops (0: the first deviation).
    """

    hypothesis_strategy: str = "default"
    frequency: float = 1.0
    fail_fast: bool = False
    fail_fast_ratio: float = 0.0
    rollback_strategy: str = "default"

    @property
    def before(self) -> bool:
        return self.hypothesis_strategy in ("default", "before-method-only", "continuously")

    @property
    def after(self) -> bool:
        return self.hypothesis_strategy in ("default", "after-method-only", "continuously")

    @property
    def during(self) -> bool:
        return self.hypothesis_strategy in ("during-method-only", "continuously")

    def as_dict(self) -> dict[str, Any]:
        return {
            "hypothesis": {
                "strategy": self.hypothesis_strategy,
                "frequency": self.frequency,
                "fail_fast": self.fail_fast,
                "fail_fast_ratio": self.fail_fast_ratio,
            },
            "rollbacks": {"strategy": self.rollback_strategy},
        }


def hypothesis_strategy(value: Any, where: str) -> str:
    """A hypothesis strategy name; ``continously`` is accepted as ``chaos run`` accepts it."""
    if value == "continously":
        value = "continuously"
    if value not in HYPOTHESIS_STRATEGIES:
        raise ValueError(f"{where}={value!r} is not one of {', '.join(HYPOTHESIS_STRATEGIES)}")
    return str(value)


def rollback_strategy(value: Any, where: str) -> str:
    if value not in ROLLBACK_STRATEGIES:
        raise ValueError(f"{where}={value!r} is not one of {', '.join(ROLLBACK_STRATEGIES)}")
    return str(value)


def frequency(value: Any, where: str) -> float:
    """Seconds between two during-checks: a positive number or a duration (``"500ms"``)."""
    from ..budget import parse_duration

    try:
        seconds = parse_duration(value, where)
    except (BudgetError, ValueError, TypeError):
        seconds = -1.0
    if isinstance(value, bool) or seconds <= 0:
        raise ValueError(f"{where}={value!r} must be a positive number of seconds or a duration such as '500ms'")
    return seconds


def fail_fast(value: Any, where: str) -> tuple[bool, float]:
    """``true``/``false``, or a percentage (0-100) of deviated during-checks that stops the run."""
    if isinstance(value, bool):
        return value, 0.0
    if isinstance(value, (int, float)) and 0 <= value <= 100:
        return True, float(value)
    raise ValueError(f"{where}={value!r} must be true, false or a percentage 0-100 of deviated checks")


def parse_runtime(path: Path, block: Any) -> Runtime:
    """The ``runtime`` block; an unknown key or value is a :class:`SpecError` naming it."""
    if block is None:
        return Runtime()
    if not isinstance(block, dict):
        raise SpecError(f"{path}: 'runtime' must be a mapping with 'hypothesis' and/or 'rollbacks'")
    unknown = sorted(set(block) - set(_RUNTIME_KEYS))
    if unknown:
        raise SpecError(
            f"{path}: unsupported key runtime.{unknown[0]}; accepted: runtime.hypothesis, runtime.rollbacks"
        )
    parts: dict[str, dict[str, Any]] = {}
    for section, keys in _RUNTIME_KEYS.items():
        part = block.get(section) or {}
        if not isinstance(part, dict):
            raise SpecError(f"{path}: 'runtime.{section}' must be a mapping with {', '.join(keys)}")
        bad = sorted(set(part) - set(keys))
        if bad:
            accepted = ", ".join(f"runtime.{section}.{k}" for k in keys)
            raise SpecError(f"{path}: unsupported key runtime.{section}.{bad[0]}; accepted: {accepted}")
        parts[section] = part
    hypo, rollbacks = parts["hypothesis"], parts["rollbacks"]
    try:
        fast, ratio = fail_fast(hypo.get("fail_fast", False), "runtime.hypothesis.fail_fast")
        return Runtime(
            hypothesis_strategy=hypothesis_strategy(hypo.get("strategy", "default"), "runtime.hypothesis.strategy"),
            frequency=frequency(hypo.get("frequency", 1.0), "runtime.hypothesis.frequency"),
            fail_fast=fast,
            fail_fast_ratio=ratio,
            rollback_strategy=rollback_strategy(rollbacks.get("strategy", "default"), "runtime.rollbacks.strategy"),
        )
    except ValueError as exc:
        raise SpecError(f"{path}: {exc}") from None


@dataclass(frozen=True)
class Spec:
    """One experiment file, parsed: the raw experiment plus what the plugin takes from it."""

    path: Path
    experiment: dict[str, Any]
    title: str
    tags: tuple[str, ...]
    budget: dict[str, Any] = field(default_factory=dict)
    fixtures: tuple[str, ...] = ()
    runtime: Runtime = field(default_factory=lambda: Runtime())
    fail_on_exit_status: bool = False

    @property
    def item_name(self) -> str:
        """The node id part: the title on one line, without ``::`` (pytest's separator)."""
        return item_name(self.title)


def item_name(title: str) -> str:
    name = " ".join(title.split()).replace("::", ":")
    return name or "experiment"


def marker_name(tag: str) -> str:
    """A tag as a marker name usable in ``-m``: runs of other characters become ``_``."""
    return _TAG_CHARS.sub("_", tag.strip()).strip("_")


def parse_text(text: str, path: Path) -> Any:
    """JSON or YAML within the reading limits (depth, YAML aliases): see :mod:`.limits`."""
    try:
        return limits.parse_json(text, path) if path.suffix == ".json" else limits.parse_yaml(text, path)
    except limits.LimitError as exc:
        raise SpecError(str(exc)) from None


# Blocks chaoslib walks before it validates anything: a wrong shape there was an AttributeError.
_LIST_OF_MAPPINGS = {"method": "activities", "rollbacks": "activities", "controls": "controls"}
_MAPPINGS = ("steady-state-hypothesis", "configuration", "secrets", "runtime")


def _check_blocks(path: Path, data: dict[str, Any]) -> None:
    """The top-level blocks have the shape chaoslib expects, so a wrong one is this file's error."""
    for key, what in _LIST_OF_MAPPINGS.items():
        block = data.get(key)
        if block is None:  # absent (or a null method): chaoslib's validation names it when the item runs
            continue
        if not isinstance(block, list) or not all(isinstance(entry, dict) for entry in block):
            raise SpecError(f"{path}: {key!r} must be a list of mappings ({what}); got {_kind(block)}")
    for key in _MAPPINGS:
        block = data.get(key)
        if block is not None and not isinstance(block, dict):
            raise SpecError(f"{path}: {key!r} must be a mapping; got {_kind(block)}")
    probes = (data.get("steady-state-hypothesis") or {}).get("probes")
    if probes is not None and (not isinstance(probes, list) or not all(isinstance(p, dict) for p in probes)):
        where = "'steady-state-hypothesis.probes'"
        raise SpecError(f"{path}: {where} must be a list of probe mappings; got {_kind(probes)}")
    for name, entry in (data.get("secrets") or {}).items():
        if not isinstance(entry, dict):
            raise SpecError(f"{path}: 'secrets.{name}' must be a mapping of secret names; got {_kind(entry)}")


def _kind(value: Any) -> str:
    if isinstance(value, list):
        odd = next((v for v in value if not isinstance(v, dict)), None)
        return f"a list holding {type(odd).__name__}" if value and odd is not None else "a list"
    return type(value).__name__


def load(path: Path, defaults: Criteria | None = None) -> Spec:
    """Parse and check ``path``; raise :class:`SpecError` naming it and what is accepted."""
    try:
        text = limits.read_text(path)
    except limits.LimitError as exc:
        raise SpecError(str(exc)) from None
    data = parse_text(text, path)
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise SpecError(f"{path}: a Chaos Toolkit experiment is a mapping with title, method...; got {kind}")
    _check_blocks(path, data)
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        raise SpecError(f"{path}: the experiment needs a non-empty 'title' (it becomes the test's name)")
    tags = data.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) and marker_name(t) for t in tags):
        raise SpecError(f"{path}: 'tags' must be a list of non-empty strings (they become markers); got {tags!r}")
    budget, fixtures, strict_status = _extension(path, data.get("extensions"), defaults or Criteria())
    return Spec(
        path=path,
        experiment=data,
        title=title,
        tags=tuple(dict.fromkeys(marker_name(t) for t in tags)),
        budget=budget,
        fixtures=fixtures,
        runtime=parse_runtime(path, data.get("runtime")),
        fail_on_exit_status=strict_status,
    )


def _extension(path: Path, extensions: Any, defaults: Criteria) -> tuple[dict[str, Any], tuple[str, ...], bool]:
    """The ``{"name": "resiliency", ...}`` entry: budget arguments (checked by the marker's parser),
    fixtures and ``fail_on_exit_status``."""
    if extensions is None:
        return {}, (), False
    if not isinstance(extensions, list) or not all(isinstance(e, dict) for e in extensions):
        raise SpecError(f"{path}: 'extensions' must be a list of mappings, each with a 'name'")
    ours = [e for e in extensions if e.get("name") == EXTENSION_NAME]
    if not ours:
        return {}, (), False
    if len(ours) > 1:
        raise SpecError(f"{path}: more than one extension named {EXTENSION_NAME!r}; merge them into one")
    entry = ours[0]
    fixtures = entry.get("fixtures", [])
    if not isinstance(fixtures, list) or not all(isinstance(f, str) and f.isidentifier() for f in fixtures):
        raise SpecError(
            f"{path}: extension {EXTENSION_NAME!r}: 'fixtures' must be a list of pytest fixture names; got {fixtures!r}"
        )
    strict_status = entry.get("fail_on_exit_status", False)
    if not isinstance(strict_status, bool):
        raise SpecError(f"{path}: extension {EXTENSION_NAME!r}: 'fail_on_exit_status' must be true or false")
    kwargs = {k: v for k, v in entry.items() if k not in EXTENSION_KEYS}
    try:
        parse_marker((), kwargs, defaults)
    except BudgetError as exc:
        raise SpecError(
            f"{path}: extension {EXTENSION_NAME!r}: {exc} (besides the budget: {', '.join(EXTENSION_KEYS)})"
        ) from None
    return kwargs, tuple(fixtures), strict_status
