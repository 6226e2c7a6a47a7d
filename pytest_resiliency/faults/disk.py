"""Disk fill: take free space from a filesystem with a real (not sparse) file, removed on revert.

The file is allocated with ``posix_fallocate``; a detached expiry helper removes it at the
fault's maximum duration even when pytest is SIGKILLed, and ``--resiliency-recover`` knows it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from ..errors import ConfigError, FaultError
from .base import Fault
from .stress import amount

__all__ = ["DiskFill", "disk_fill"]


class DiskFill(Fault):
    """Allocate a file so the filesystem of ``path`` has ``bytes`` less free space (or is ``percent`` full)."""

    kind = "disk_fill"
    needs_expiry_helper = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        bytes: int | str | None = None,
        *,
        percent: float | None = None,
        name: str | None = None,
        max_duration: float | str | None = None,
    ) -> None:
        super().__init__(name=name, max_duration=max_duration)
        self.path = Path(path)
        if not self.path.is_dir():
            raise ConfigError(
                f"faults.disk_fill: path={str(path)!r} is not a directory (the fill file is created in it)"
            )
        self.bytes, self.percent = amount("disk_fill", bytes, percent)
        self.file = self.path / f".resiliency-fill-{uuid.uuid4().hex[:10]}"
        self.size = 0

    @property
    def target(self) -> str:
        return f"path {self.path}"

    def identities(self) -> list[str]:
        """The filesystem (its device), not the path: two fills of one filesystem compete for its space."""
        return [f"filesystem {os.stat(self.path).st_dev}"]

    def _prepare(self) -> None:
        usage = shutil.disk_usage(self.path)
        if self.percent is not None:
            self.size = int(usage.total * self.percent / 100) - usage.used
            if self.size <= 0:
                raise FaultError(
                    f"faults.disk_fill: {self.path} is already {100 * usage.used / usage.total:.1f}% full "
                    f"(asked for {self.percent:g}%)"
                )
        else:
            assert self.bytes is not None
            self.size = self.bytes
        if self.size > usage.free:
            raise FaultError(f"faults.disk_fill: {self.size} bytes do not fit in {self.path} ({usage.free} bytes free)")

    def _inject(self) -> None:
        fd = os.open(self.file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.posix_fallocate(fd, 0, self.size)
        finally:
            os.close(fd)

    def _revert(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.file.unlink()

    def _undo_actions(self) -> list[dict[str, Any]]:
        return [{"op": "unlink", "path": str(self.file)}]

    def params(self) -> dict[str, Any]:
        return {**super().params(), "path": str(self.path), "bytes": self.size or self.bytes, "percent": self.percent}

    def describe(self) -> str:
        amount = f"to {self.percent:g}% full" if self.percent is not None else f"with {self.bytes} bytes"
        return f"fill {self.path} {amount}"


# The faults as users call them (``faults.kill(...)``): the classes themselves, one signature each.
disk_fill = DiskFill
