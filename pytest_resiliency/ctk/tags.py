"""Chaos Toolkit experiment tags as pytest markers.

Tags that would change what pytest does (skip, parametrize...) or already mean something
here become ``ctk_<tag>`` markers instead. Used by the collector and by the item (one
direction: both import this, neither imports the other for it). Standard library and pytest only.
"""

from __future__ import annotations

import pytest

# Tags that would change what pytest does (skip it, parametrize it...) or that already mean
# something here become ``ctk_<tag>`` markers instead.
RESERVED_TAGS = frozenset(
    {"skip", "skipif", "xfail", "parametrize", "usefixtures", "filterwarnings", "timeout", "resiliency", "ctk"}
)


def tag_marker(tag: str) -> str:
    return f"ctk_{tag}" if tag in RESERVED_TAGS else tag


def register_markers(config: pytest.Config, tags: tuple[str, ...]) -> None:
    """Register each tag as a marker, so ``--strict-markers`` accepts it and ``-m`` selects it."""
    known = {line.split(":")[0].split("(")[0].strip() for line in config.getini("markers")}
    for tag in tags:
        name = tag_marker(tag)
        if name not in known:
            config.addinivalue_line("markers", f"{name}: Chaos Toolkit experiment tag {tag!r}")
            known.add(name)
