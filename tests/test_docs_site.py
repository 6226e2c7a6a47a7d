"""The documentation site's structure, checked without building it (CI builds it: mkdocs build --strict).

Fast feedback for whoever adds a page: every page under docs/ is in the nav of mkdocs.yml,
every nav entry exists, and the README sections the reference page includes are marked.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def nav_pages(nav: Any) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in nav_pages(value)]
    return []


def config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    return loaded


def test_every_page_is_in_the_nav_and_every_nav_entry_exists() -> None:
    listed = nav_pages(config()["nav"])
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert sorted(set(listed)) == sorted(listed), "a page is listed twice in mkdocs.yml nav"
    assert not set(pages) - set(listed), f"add these pages to the nav in mkdocs.yml: {sorted(set(pages) - set(listed))}"
    assert not set(listed) - set(pages), f"nav entries without a page: {sorted(set(listed) - set(pages))}"


def test_included_readme_sections_are_marked_once() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in DOCS.rglob("*.md"):
        for section in re.findall(r'^--8<-- "README\.md:([\w-]+)"$', page.read_text(encoding="utf-8"), re.M):
            assert readme.count(f"--8<-- [start:{section}]") == 1, (page.name, section)
            assert readme.count(f"--8<-- [end:{section}]") == 1, (page.name, section)
