"""Bounded reading of experiment files: size, nesting depth and YAML alias expansion.

An experiment file is a few KiB written by a person; a file from elsewhere (a generated one,
a pull request, a shared corpus) may be hostile or broken. Without limits a 100,000-deep
``[[[...`` is a ``RecursionError``, a YAML "billion laughs" alias bomb loads in milliseconds
and then hangs whatever walks it (chaoslib's deep copies, the journal, the scrubber), and a
20 MB description slows every report. Every limit here is a :class:`LimitError` naming the
file, the limit and what was found, raised before anything else reads the data.

PyYAML is imported only when a YAML file is read (never at pytest start-up).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytest_resiliency.errors import ConfigError

MAX_BYTES = 1 << 20  # 1 MiB: the largest public experiment we know of is ~30 KiB
MAX_DEPTH = 64  # nesting of mappings and lists; chaoslib deep-copies the experiment recursively
MAX_NODES = 100_000  # values once YAML aliases are expanded (a billion-laughs file has 10**9)


class LimitError(ConfigError):
    """An experiment file beyond a reading limit; the message names the file and the limit."""


def read_text(path: Path) -> str:
    """The file's text, refused when it is larger than :data:`MAX_BYTES` (checked before reading)."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise LimitError(f"{path}: {size:,} bytes; an experiment file may have at most {MAX_BYTES:,} bytes (1 MiB)")
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)  # the file may have grown since stat()
    except OSError as exc:
        raise LimitError(f"{path}: cannot read the experiment file: {exc}") from None
    if len(data) > MAX_BYTES:
        raise LimitError(f"{path}: more than {MAX_BYTES:,} bytes; an experiment file may have at most 1 MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LimitError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _too_deep(path: Path, where: str = "") -> LimitError:
    return LimitError(f"{path}: nested deeper than {MAX_DEPTH} levels{where}; an experiment is a few levels deep")


def parse_json(text: str, path: Path) -> Any:
    """JSON with the depth limit; numbers too large to read are an error naming the file."""
    try:
        data = json.loads(text)
    except RecursionError:  # deeper than the C decoder's own guard (about 1,000 levels)
        raise _too_deep(path) from None
    except json.JSONDecodeError as exc:
        raise LimitError(f"{path}: not valid JSON: {exc}") from None
    except ValueError as exc:  # an integer beyond Python's digit limit (4,300 digits)
        raise LimitError(f"{path}: not valid JSON: a number cannot be read ({_digits(exc)})") from None
    check_shape(data, path)
    return data


def parse_yaml(text: str, path: Path) -> Any:
    """YAML (safe tags only) with the depth checked while composing and the aliases bounded."""
    import yaml

    class Loader(yaml.SafeLoader):  # the pure-Python loader: its composer can be bounded
        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                    raise _too_deep(path, f" (line {mark.line + 1}, column {mark.column + 1})")
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    loader = Loader(text)
    try:
        data = loader.get_single_data()
    except LimitError:
        raise
    except yaml.YAMLError as exc:
        raise LimitError(f"{path}: not valid YAML: {exc}") from None
    except (ValueError, OverflowError) as exc:  # a 5,000-digit integer, a timestamp out of range
        raise LimitError(f"{path}: not valid YAML: a value cannot be read ({_digits(exc)})") from None
    finally:
        loader.dispose()
    check_shape(data, path)
    return data


def _digits(exc: Exception) -> str:
    """Python's message for a huge integer ends with advice meant for programmers, not for this file."""
    text = str(exc)
    return "a number with more than 4,300 digits" if "Exceeds the limit" in text else text


def check_shape(data: Any, path: Path) -> None:
    """Refuse data nested deeper than :data:`MAX_DEPTH`, with more than :data:`MAX_NODES` values once
    shared (aliased) parts are counted each time they appear, or that contains itself.

    Iterative, and each distinct container is sized once, so an alias bomb costs its distinct size.
    """
    sizes: dict[int, int] = {}  # id(container) -> expanded size (memo: aliases share containers)
    depths: dict[int, int] = {}  # id(container) -> levels below it
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(data, False)]
    while stack:
        value, done = stack.pop()
        if not isinstance(value, (dict, list)):
            continue
        key = id(value)
        children = list(value.keys()) + list(value.values()) if isinstance(value, dict) else value
        if done:
            on_path.discard(key)
            nested = [c for c in children if isinstance(c, (dict, list))]
            sizes[key] = 1 + len(children) - len(nested) + sum(sizes[id(c)] for c in nested)
            depths[key] = 1 + max((depths[id(c)] for c in nested), default=0)
            if depths[key] > MAX_DEPTH:
                raise _too_deep(path)
            if sizes[key] > MAX_NODES:
                raise LimitError(
                    f"{path}: more than {MAX_NODES:,} values once YAML aliases are expanded; "
                    "an alias bomb, or an experiment far larger than any real one"
                )
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise LimitError(f"{path}: a value contains itself (a YAML alias to its own ancestor)")
        on_path.add(key)
        stack.append((value, True))
        stack.extend((c, False) for c in children if isinstance(c, (dict, list)) and id(c) not in sizes)
