"""Packaging: the wheel ships every subpackage, the SSM documents, py.typed and the entry point."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import setuptools

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_package_list_is_complete() -> None:
    """The list is explicit (for the ssm_documents mapping); a new subpackage must join it."""
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = set(setuptools.find_packages(where=str(ROOT), include=["pytest_resiliency*"]))
    assert listed == found | {"pytest_resiliency.ssm_documents"}


def test_metadata() -> None:
    project = PYPROJECT["project"]
    assert project["name"] == "pytest-resiliency"
    assert project["requires-python"] == ">=3.11"
    assert project["entry-points"]["pytest11"] == {"resiliency": "pytest_resiliency.plugin"}
    assert {"Framework :: Pytest", "Typing :: Typed"} <= set(project["classifiers"])
    runtime = {dep.split(">")[0].split("=")[0] for dep in project["dependencies"]}
    assert {"pytest", "tenacity", "pytest-html", "locust", "boto3"} <= runtime
    test_extra = " ".join(project["optional-dependencies"]["test"])
    for name in ("moto[server]", "pytest-xdist", "hypothesis", "ruff", "mypy"):
        assert name in test_extra


@pytest.mark.slow
def test_wheel_contents(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("pytest_resiliency-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    documents = {p.name for p in (ROOT / "ssm_documents").glob("*.yml")}
    assert documents
    assert {f"pytest_resiliency/ssm_documents/{d}" for d in documents} <= names
    assert "pytest_resiliency/py.typed" in names
    assert "pytest_resiliency/load/locustfiles/resiliency_sink.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "resiliency = pytest_resiliency.plugin" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_a_failing_hypothesis_test_is_reported_under_this_projects_warning_filters(pytester: pytest.Pytester) -> None:
    """``filterwarnings = error`` must not turn hypothesis's failure report into an INTERNALERROR."""
    ini = (ROOT / "pytest.ini").read_text().replace("testpaths = tests", "").replace("-p pytester", "")
    pytester.makefile(".ini", pytest=ini)
    pytester.makepyfile(
        """
        from hypothesis import given, strategies as st

        @given(st.integers())
        def test_fails(x):
            assert x < 10
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Falsifying example*"])
