"""Report file options: a path that cannot be written is a usage error before the run (issue 21).

Before, ``--resiliency-json DIR`` ran the whole suite and then died with a raw traceback in
``pytest_sessionfinish``, losing the journal. Now the path is checked (by writing next to it)
at configure time, and a file that still fails at the end is one line and a failed session.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_resiliency.errors import ConfigError
from pytest_resiliency.report.options import output_path

PASSING = "def test_nothing():\n    pass\n"


@pytest.mark.parametrize("flag", ["--resiliency-json", "--resiliency-summary-md"])
@pytest.mark.parametrize(
    ("where", "message"),
    [
        (".", "is a directory; give a file path such as"),
        ("plain.txt/report", "plain.txt is a file, not a directory, so nothing can be written under it"),
        ("plain.txt/deeper/report", "plain.txt is a file, not a directory"),
        # /proc refuses new files even to root: a real unwritable place, permission bits aside
        ("/proc/resiliency-report", "cannot write to /proc "),
    ],
)
def test_an_unwritable_report_path_is_a_usage_error_before_the_run(
    pytester: pytest.Pytester, flag: str, where: str, message: str
) -> None:
    pytester.makepyfile(PASSING)
    (pytester.path / "plain.txt").write_text("not a directory\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"{flag}={where}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1 and message in errors[0] and flag in errors[0], result.stderr.str()
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
    assert "test_nothing" not in result.stdout.str() and "passed" not in result.stdout.str()  # nothing ran
    assert sorted(p.name for p in pytester.path.iterdir() if p.name.startswith(".resiliency-probe")) == []


def test_missing_directories_are_fine_and_the_probe_leaves_nothing(tmp_path: Path) -> None:
    target = output_path(str(tmp_path / "new" / "dir" / "journal.json"), "--resiliency-json")
    assert target.name == "journal.json" and not target.parent.exists()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match="is a directory"):
        output_path(str(tmp_path), "--resiliency-json")


def test_a_report_path_that_breaks_during_the_run_is_one_line_and_a_failed_session(pytester: pytest.Pytester) -> None:
    """The directory is replaced by a file mid-run: the other reports survive, the session fails."""
    pytester.makepyfile(
        """
        import shutil
        from pathlib import Path

        def test_pull_the_rug():
            shutil.rmtree("out")
            Path("out").write_text("now a file")
        """
    )
    (pytester.path / "out").mkdir()
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--resiliency-json=out/journal.json", "--junitxml=junit.xml"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["ERROR: --resiliency-json: could not write */out/journal.json (*)"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert (pytester.path / "junit.xml").exists()  # the other reports were written
