"""Every Python example in README.md runs as written (item 6 of issue 13).

The pages of the documentation site (``docs/``) have their own runner, ``test_docs_examples.py``.

Each ```python block is saved as a test module next to a conftest that brings the example
suite's fixtures (the demo ``orders`` API, ``web_fleet``), which is where the README says
to save them, and run in a subprocess. A block that defines only fixtures must import.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from pytest_resiliency.targets.datastores import MissingBinary, require

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
CONFTEST = """
from resiliency_tests.conftest import demo, orders, pytest_configure  # noqa: F401  (the example suite's)
from resiliency_tests.aws.conftest import web_fleet  # noqa: F401
"""
TOOLS = {
    "redis_server": ("redis-server", "redis-server", ()),
    "postgres_server": ("postgres", "postgresql", ("/usr/lib/postgresql/*/bin",)),
    "etcd_cluster": ("etcd", "etcd-server", ()),
    "haproxy_server": ("haproxy", "haproxy", ()),
}


def test_the_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 4 and "def test_orders_api_worker_killed(orders" in BLOCKS[0]


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs_as_written(pytester: pytest.Pytester, index: int) -> None:
    code = BLOCKS[index]
    for fixture, (binary, package, dirs) in TOOLS.items():
        if fixture in code:
            try:
                require(binary, package, dirs)
            except MissingBinary as exc:
                pytest.skip(str(exc))
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(**{f"test_readme_block{index}": code})
    env_path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    pytester._monkeypatch.setenv("PYTHONPATH", env_path)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", timeout=180)
    tests = len(re.findall(r"^def test_", code, flags=re.M))
    if tests:
        outcomes = {k: v for k, v in result.parseoutcomes().items() if k != "warnings"}
        assert outcomes == {"passed": tests}, result.stdout.str()[-4000:]
    else:
        assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED, result.stdout.str()
