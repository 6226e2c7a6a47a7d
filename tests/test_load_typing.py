"""The ``load`` and ``writer`` fixtures are typed for users: a wrong argument fails ``mypy --strict``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_resiliency

USER_TEST = """
from pytest_resiliency.load import LoadFactory, LoadRun, WriterFactory


def test_orders(load: LoadFactory, writer: WriterFactory) -> None:
    traffic: LoadRun = load("http://127.0.0.1:8080", users=10, rate=50, writes=0.3, workers=2)
    traffic.wait_steady(timeout="30s")
    assert traffic.wait_recovered(timeout=10.0)
    writer(print, rate=200, concurrency=4).stop()
    load("http://127.0.0.1:8080", users=10, rps=50)
    load("http://127.0.0.1:8080", users="ten")
    load("http://127.0.0.1:8080", on_worker_loss="ignore")
    writer(print, concurency=2)
"""


def test_a_wrong_argument_to_load_or_writer_fails_type_checking(tmp_path: Path) -> None:
    pytest.importorskip("mypy", reason="mypy is in the test extra")
    user = tmp_path / "test_user.py"
    user.write_text(USER_TEST)
    root = Path(pytest_resiliency.__file__).resolve().parents[1]  # the package under test, not another copy
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(user),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "MYPYPATH": str(root)},
        cwd=tmp_path,
        timeout=300,
    )
    errors = sorted(
        (int(line.split(":")[1]), line.rsplit("[", 1)[-1].rstrip("]"))
        for line in result.stdout.splitlines()
        if ": error: " in line
    )
    # The correct calls (lines 6-9) pass; each wrong one (lines 10-13) is reported, and nothing else.
    assert errors == [(10, "call-arg"), (11, "arg-type"), (12, "arg-type"), (13, "call-arg")], result.stdout
    assert 'Unexpected keyword argument "rps"' in result.stdout
    assert 'did you mean "concurrency"' in result.stdout
