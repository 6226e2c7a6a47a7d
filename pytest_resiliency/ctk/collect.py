"""Collection of Chaos Toolkit experiment files (``*.experiment.json``/``.yaml``) as pytest items.

A file is collected only when it is an experiment (a mapping with ``title`` and ``method``)
or matches the user's ``resiliency_experiment_files`` patterns; any other file with the same
suffix is left to pytest and other plugins, silently. Tags become markers only for the
experiment files collected, so ``--strict-markers`` judges every other suite as before.

Imported at pytest start-up (``plugin.pytest_plugins``): only the standard library and
pytest here; the item, the file parser and chaoslib load when an experiment file is found.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .item import ExperimentItem

DEFAULT_PATTERNS = ("*.experiment.json", "*.experiment.yaml", "*.experiment.yml")
SNIFF_BYTES = 1 << 20  # an experiment file is a few KiB; a bigger file is judged by its first MiB
# Top-level keys of a block-style YAML mapping (column 0), or any key of a flow/JSON-style one.
# Patterns, not compiled here: ``re`` compiles (and caches) them when a candidate file is found.
_BLOCK_KEYS = r"""(?m)^(["']?)(title|method)\1[ \t]*:"""
_FLOW_KEYS = r"""(["']?)\b(title|method)\1\s*:"""


def pytest_addoption(parser: pytest.Parser) -> None:
    from . import flags

    flags.addoption(parser)
    parser.addini(
        "resiliency_experiment_files",
        "glob patterns of Chaos Toolkit experiment files collected as tests (matched against the path's end, "
        f"e.g. chaos/*.json); besides these, {', '.join(DEFAULT_PATTERNS)} files are collected when they "
        "have a title and a method",
        type="args",
        default=[],
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ctk: a Chaos Toolkit experiment file run as a test")
    from . import flags

    if flags.given(config):  # a bad --resiliency-ctk-* option is a usage error before anything runs
        from .options import options_of

        options_of(config)


def _declared(file_path: Path, config: pytest.Config) -> bool:
    """Matched by the user's own ``resiliency_experiment_files`` patterns: an experiment by declaration."""
    return any(file_path.match(pattern) for pattern in config.getini("resiliency_experiment_files"))


def looks_like_experiment(file_path: Path) -> bool:
    """Whether a ``*.experiment.*`` file is a Chaos Toolkit experiment: a mapping with ``title`` and ``method``.

    Cheap (no YAML parser, no chaoslib): valid JSON is checked exactly; anything else by its
    top-level keys, so a misspelt experiment still reaches the parser and is reported, while
    a data file that merely shares the suffix (``baseline.experiment.yaml: lr: 0.1``) is left
    alone, silently.
    """
    try:
        with file_path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES + 1)
        text = head[:SNIFF_BYTES].decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return False  # not text: not an experiment (a cut multi-byte character at the limit is no loss)
    if file_path.suffix == ".json" and len(head) <= SNIFF_BYTES:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            pass  # invalid (or absurdly deep) JSON: judged by its keys below, so a broken experiment is reported
        else:
            return isinstance(data, dict) and "title" in data and "method" in data
    keys = _FLOW_KEYS if text.lstrip().startswith("{") else _BLOCK_KEYS
    return {match.group(2) for match in re.finditer(keys, text)} >= {"title", "method"}


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in (".json", ".yaml", ".yml"):
        return None
    if _declared(file_path, parent.config) or (
        any(file_path.match(pattern) for pattern in DEFAULT_PATTERNS) and looks_like_experiment(file_path)
    ):
        return ExperimentFile.from_parent(parent, path=file_path)
    return None


CHAOSLIB = pytest.StashKey[bool]()


def chaoslib_installed(config: pytest.Config) -> bool:
    """Checked once per run, when the first experiment file is collected (importing it costs ~80 ms)."""
    found = config.stash.get(CHAOSLIB, None)
    if found is None:
        from .item import chaoslib_available

        found = config.stash[CHAOSLIB] = chaoslib_available()
    return found


class ExperimentFile(pytest.File):
    """One experiment file: one item named after the experiment's title."""

    def collect(self) -> list[ExperimentItem]:
        from ..settings import STATE
        from .item import ExperimentItem
        from .spec import SpecError, load

        state = self.config.stash.get(STATE, None)
        try:
            spec = load(self.path, state.criteria if state is not None else None)
        except SpecError as exc:
            from ..report.secrets import scrub_text  # the plugin's own output: scrubbed like a resiliency test's

            raise self.CollectError(scrub_text(f"Chaos Toolkit experiment file: {exc}")) from None
        from .tags import register_markers

        register_markers(self.config, spec.tags)
        item = ExperimentItem.create(self, spec)
        if not chaoslib_installed(self.config):
            from .item import MISSING_CHAOSLIB

            item.add_marker(pytest.mark.skip(reason=MISSING_CHAOSLIB))  # reported at the file, like a skip mark
        return [item]


def pytest_resiliency_measured(item: pytest.Item, experiment: object, payload: dict[str, object]) -> None:
    """One word for one outcome: an experiment FAILED by pytest (deviated, failed activity or
    rollback) is a ``breach`` in the journal, the summary table and JUnit, as a breached budget
    is; a crash of the runner itself stays an ``error``."""
    module = sys.modules.get("pytest_resiliency.ctk.item")  # loaded only when an experiment file was collected
    if module is None or not isinstance(item, module.ExperimentItem):
        return
    run = item.run
    failures = list(run.failures if run is not None else [])
    if not failures or getattr(run, "interrupted", None) or payload.get("outcome") != "error":
        return
    payload["outcome"] = "breach"
    verdict = payload.get("verdict")
    if isinstance(verdict, dict):
        breaches = [{"nfr": "experiment", "measured": None, "budget": None, "text": f} for f in failures]
        old = verdict.get("breaches")
        verdict["breaches"] = [*(old if isinstance(old, list) else []), *breaches]
        verdict["passed"] = False
        verdict["line"] = "; ".join(str(b["text"]) for b in verdict["breaches"] if isinstance(b, dict))
    item.user_properties[:] = [
        ("resiliency.outcome", "breach") if prop == ("resiliency.outcome", "error") else prop
        for prop in item.user_properties
    ]


def __getattr__(name: str) -> object:
    """``tag_marker``, ``register_markers`` and ``RESERVED_TAGS`` moved to :mod:`.tags` (kept importable here)."""
    if name in ("RESERVED_TAGS", "register_markers", "tag_marker"):
        from . import tags

        return getattr(tags, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
