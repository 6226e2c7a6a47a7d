"""Every Python example of the documentation site (``docs/``) runs, exactly as printed.

Each ```` ```python ```` block must be preceded by a directive comment saying what it is:

``<!-- example: test -->``
    a pytest test module; it is run by an inner ``pytest`` in a fresh directory and must
    pass (``outcome=failed``: must fail). ``conftest=NAME`` puts
    ``tests/docs_conftest/NAME.py`` beside it as its ``conftest.py``.
``<!-- example: script -->``
    a program; ``python example.py`` must exit 0.
``<!-- example: import -->``
    a module meant to be loaded by another tool (a locustfile): it must import cleanly in
    a fresh interpreter.
``<!-- example: skip reason="..." -->``
    not run; the reason (real AWS, a fragment, a file from another run) is required.

A block without a directive fails this test, naming the file and line, so a new example
cannot slip in unrun. Examples run in subprocesses with the repository on ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CONFTESTS = Path(__file__).resolve().parent / "docs_conftest"
MODES = ("test", "script", "import", "skip")
DIRECTIVE = re.compile(r"^<!--\s*example:\s*(?P<mode>\w+)(?P<options>.*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)```python\b")


@dataclass
class Example:
    page: str
    line: int
    code: str
    mode: str | None
    options: dict[str, str]

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def examples(docs: Path = DOCS) -> list[Example]:
    found = []
    for page in sorted(docs.rglob("*.md")):
        lines = page.read_text(encoding="utf-8").splitlines()
        for number, text in enumerate(lines):
            fence = FENCE.match(text)
            if not fence:
                continue
            end = next(i for i in range(number + 1, len(lines)) if lines[i].strip() == "```")
            indent = len(fence.group("indent"))
            code = "\n".join(line[indent:] for line in lines[number + 1 : end]) + "\n"
            previous = next((lines[i] for i in range(number - 1, -1, -1) if lines[i].strip()), "")
            directive = DIRECTIVE.match(previous.strip())
            mode, options = None, {}
            if directive:
                mode = directive.group("mode")
                options = dict(item.split("=", 1) for item in shlex.split(directive.group("options")) if "=" in item)
            found.append(Example(page.relative_to(docs).as_posix(), number + 1, code, mode, options))
    return found


EXAMPLES = examples()


def test_the_docs_have_examples_and_each_says_how_it_runs() -> None:
    assert len(EXAMPLES) >= 5
    unmarked = [e.id for e in EXAMPLES if e.mode not in MODES]
    assert not unmarked, (
        f"python blocks without a directive (<!-- example: test|script|import|skip reason=... -->): {unmarked}"
    )
    unexplained = [e.id for e in EXAMPLES if e.mode == "skip" and not e.options.get("reason", "").strip()]
    assert not unexplained, f"skipped examples must say why (reason=...): {unexplained}"


def run(argv: list[str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("GITHUB_ACTIONS", None)
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.mode in MODES], ids=lambda e: e.id)
def test_example_runs(example: Example, tmp_path: Path) -> None:
    if example.mode == "skip":
        pytest.skip(f"{example.id}: {example.options['reason']}")
    if example.mode == "test":
        (tmp_path / "test_example.py").write_text(example.code, encoding="utf-8")
        if "conftest" in example.options:
            conftest = CONFTESTS / f"{example.options['conftest']}.py"
            (tmp_path / "conftest.py").write_text(conftest.read_text(encoding="utf-8"), encoding="utf-8")
        done = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py"], tmp_path)
        expected = 1 if example.options.get("outcome") == "failed" else 0
    else:
        name = "example_module.py" if example.mode == "import" else "example.py"
        (tmp_path / name).write_text(example.code, encoding="utf-8")
        argv = [sys.executable, "-c", "import example_module"] if example.mode == "import" else [sys.executable, name]
        done = run(argv, tmp_path)
        expected = 0
    assert done.returncode == expected, (
        f"{example.id} ({example.mode}) exited {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
    )


def test_a_block_without_a_directive_is_found(tmp_path: Path) -> None:
    (tmp_path / "page.md").write_text(
        '# Page\n\n<!-- example: skip reason="a fragment" -->\n```python\nx = 1\n```\n\n'
        "text\n\n```python\ny = 2\n```\n",
        encoding="utf-8",
    )
    found = examples(tmp_path)
    assert [(e.id, e.mode, e.options) for e in found] == [
        ("page.md:4", "skip", {"reason": "a fragment"}),
        ("page.md:10", None, {}),
    ]
