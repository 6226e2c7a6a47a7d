"""Reading a Chaos Toolkit experiment file into what collection needs: title, markers, budget.

Only JSON/YAML parsing and our own checks here (chaoslib validates the activities when the
item runs), so collecting a directory of experiment files stays cheap and works without
chaostoolkit-lib installed. Every problem is a :class:`SpecError` naming the file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..budget import BudgetError, Criteria, parse_marker

EXTENSION_NAME = "resiliency"
# Keys of the ``resiliency`` extension beyond the marker's own arguments.
EXTENSION_KEYS = ("name", "fixtures")
_TAG_CHARS = re.compile(r"[^\w.\-]+")


class SpecError(ValueError):
    """An experiment file that cannot become a test; the message names the file and the problem."""


@dataclass(frozen=True)
class Spec:
    """One experiment file, parsed: the raw experiment plus what the plugin takes from it."""

    path: Path
    experiment: dict[str, Any]
    title: str
    tags: tuple[str, ...]
    budget: dict[str, Any] = field(default_factory=dict)
    fixtures: tuple[str, ...] = ()

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
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"{path}: not valid JSON: {exc}") from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from None


def load(path: Path, defaults: Criteria | None = None) -> Spec:
    """Parse and check ``path``; raise :class:`SpecError` naming it and what is accepted."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the experiment file: {exc}") from None
    data = parse_text(text, path)
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise SpecError(f"{path}: a Chaos Toolkit experiment is a mapping with title, method...; got {kind}")
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        raise SpecError(f"{path}: the experiment needs a non-empty 'title' (it becomes the test's name)")
    tags = data.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) and marker_name(t) for t in tags):
        raise SpecError(f"{path}: 'tags' must be a list of non-empty strings (they become markers); got {tags!r}")
    budget, fixtures = _extension(path, data.get("extensions"), defaults or Criteria())
    return Spec(
        path=path,
        experiment=data,
        title=title,
        tags=tuple(dict.fromkeys(marker_name(t) for t in tags)),
        budget=budget,
        fixtures=fixtures,
    )


def _extension(path: Path, extensions: Any, defaults: Criteria) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The ``{"name": "resiliency", ...}`` entry: budget arguments (checked by the marker's parser) and fixtures."""
    if extensions is None:
        return {}, ()
    if not isinstance(extensions, list) or not all(isinstance(e, dict) for e in extensions):
        raise SpecError(f"{path}: 'extensions' must be a list of mappings, each with a 'name'")
    ours = [e for e in extensions if e.get("name") == EXTENSION_NAME]
    if not ours:
        return {}, ()
    if len(ours) > 1:
        raise SpecError(f"{path}: more than one extension named {EXTENSION_NAME!r}; merge them into one")
    entry = ours[0]
    fixtures = entry.get("fixtures", [])
    if not isinstance(fixtures, list) or not all(isinstance(f, str) and f.isidentifier() for f in fixtures):
        raise SpecError(
            f"{path}: extension {EXTENSION_NAME!r}: 'fixtures' must be a list of pytest fixture names; got {fixtures!r}"
        )
    kwargs = {k: v for k, v in entry.items() if k not in EXTENSION_KEYS}
    try:
        parse_marker((), kwargs, defaults)
    except BudgetError as exc:
        raise SpecError(
            f"{path}: extension {EXTENSION_NAME!r}: {exc} (besides the budget: {', '.join(EXTENSION_KEYS)})"
        ) from None
    return kwargs, tuple(fixtures)
