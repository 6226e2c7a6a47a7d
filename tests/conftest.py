"""Fixtures shared by the plugin's own tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# One errors module for the whole session. pytester's inline runs restore sys.modules afterwards,
# dropping the submodules they imported, but the `pytest_resiliency` package (imported at start-up)
# keeps them as attributes: a later inline run then gets the old `faults` package, which raises the
# old error classes, and imports a fresh `errors` module, so `pytest.raises(ConfigError)` missed.
import pytest_resiliency.errors  # noqa: F401


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
def ext4_image(tmp_path: Path) -> Iterator[Path]:
    """A private 64 MB ext4 filesystem on a loop device: a real disk's reserved blocks (5 %) included.

    Skips without root, ``mkfs.ext4`` or loop devices; lazily unmounted at the end of the test.
    """
    if os.geteuid() != 0 or not shutil.which("mkfs.ext4") or not shutil.which("mount"):
        pytest.skip("needs root and mkfs.ext4 (e2fsprogs): a loop-mounted ext4 filesystem")
    image, mount = tmp_path / "ext4.img", tmp_path / "ext4"
    mount.mkdir()
    with image.open("wb") as f:
        f.truncate(64 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    mounted = subprocess.run(["mount", "-o", "loop", str(image), str(mount)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"no loop device here: {mounted.stderr.strip()}")
    yield mount
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
