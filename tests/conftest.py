"""Fixtures shared by the plugin's own tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """The selection markers of the plugin's own tests (the plugin registers only its own markers)."""
    config.addinivalue_line("markers", "slow: takes more than a few seconds (real processes, locust, browsers)")
    config.addinivalue_line("markers", "aws: runs against the embedded moto server")
    config.addinivalue_line("markers", "destructive: kills, fills or breaks processes the test started")


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Factory of private tmpfs mounts (``tmpfs("8m")``), so filling one touches no one's disk.

    Skips without root or ``mount``; every mount is lazily unmounted at the end of the test.
    """
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root: mounting a private tmpfs")
    mounts: list[Path] = []

    def make(size: str) -> Path:
        mount = tmp_path / f"tmpfs{len(mounts)}"
        mount.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], check=True)
        mounts.append(mount)
        return mount

    yield make
    for mount in mounts:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def named_sleeper(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A process with a name nobody else on this shared machine uses."""
    name = f"rz{uuid.uuid4().hex[:8]}"
    exe = tmp_path / name
    shutil.copy(shutil.which("sleep") or "/bin/sleep", exe)
    proc = subprocess.Popen([str(exe), "120"])
    yield name, proc
    proc.kill()
    proc.wait()
