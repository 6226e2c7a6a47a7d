"""``pytest --resiliency-recover`` on entries that no local recipe can undo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

LEAVE_A_REMOTE_FAULT = """
import os, time
from pytest_resiliency.faults import journal
entry = journal.Entry.create("ec2_stop", "i-0123", "ec2_stop on i-0123 (max 10m00s)", time.time() + 600, None)
os._exit(0)  # dies with the entry in the journal and no undo recipe, as after a failed AWS revert
"""


def test_an_entry_without_undo_recipe_is_reported_for_checking_by_hand(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    journal_dir = tmp_path / "journal"
    subprocess.run(
        [sys.executable, "-c", LEAVE_A_REMOTE_FAULT],
        env={**os.environ, "RESILIENCY_JOURNAL_DIR": str(journal_dir)},
        check=True,
    )
    assert len(list((journal_dir / "active").glob("*.json"))) == 1
    result = pytester.runpytest_subprocess("--resiliency-recover", f"--resiliency-journal-dir={journal_dir}")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "*CHECK BY HAND ec2_stop on i-0123 (max 10m00s) (left by pid *): it has no local undo recipe",
            "pytest-resiliency: recovered 0 fault(s), 1 to check by hand",
        ]
    )
    assert not list((journal_dir / "active").glob("*.json"))
