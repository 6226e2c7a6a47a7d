"""Disk fill: take free space from a filesystem with a real (not sparse) file, removed on revert.

The file is allocated with ``posix_fallocate``; a detached expiry helper removes it at the
fault's maximum duration even when pytest is SIGKILLed, and ``--resiliency-recover`` knows it.

``percent`` is the filesystem's use as ``df`` shows it: used / (used + available to ordinary
users). Most filesystems keep blocks for root (ext4: 5 %), so "100 % of the total" can never be
reached and ``df``'s figure is the one people read. ``percent=100`` means *full*: every block
pytest may take, the reserved ones too when it runs as root, so no process can write.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from pathlib import Path
from typing import Any

from ..errors import ConfigError, FaultError
from .base import Fault
from .stress import amount

__all__ = ["DiskFill", "disk_fill"]

MAX_FILL_CALLS = 256  # fallocate calls to fill up: ~2 per halving of the chunk, from the free space down to a block


def _fill_up(fd: int, free: int, block: int) -> int:
    """Allocate every block the filesystem lets this process have; returns the file's size.

    ``free`` is only where to start: root may also take the blocks reserved for it, and the
    filesystem keeps some for its own metadata. So: allocate in chunks, halving a chunk that
    does not fit, until not even one block does.
    """
    size, chunk = 0, max(free, block)
    for _ in range(MAX_FILL_CALLS):
        if chunk < block:
            break
        try:
            os.posix_fallocate(fd, size, chunk)
            size += chunk
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            chunk //= 2
    return os.fstat(fd).st_size


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

    def _space(self) -> tuple[int, int]:
        """``(used, available)`` bytes as ``df`` counts them (available: to ordinary users)."""
        st = os.statvfs(self.path)
        return (st.f_blocks - st.f_bfree) * st.f_frsize, st.f_bavail * st.f_frsize

    def _prepare(self) -> None:
        used, available = self._space()
        if self.percent is not None:
            capacity = used + available
            self.size = available if self.percent >= 100 else int(capacity * self.percent / 100) - used
            if self.size <= 0:
                raise FaultError(
                    f"faults.disk_fill: {self.path} is already {100 * used / max(capacity, 1):.1f}% full "
                    f"(asked for {self.percent:g}%)"
                )
        else:
            assert self.bytes is not None
            self.size = self.bytes
        if self.size > available:
            raise FaultError(f"faults.disk_fill: {self.size} bytes do not fit in {self.path} ({available} bytes free)")

    def _inject(self) -> None:
        fd = os.open(self.file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            if self.percent is not None and self.percent >= 100:
                self.size = _fill_up(fd, self.size, os.statvfs(self.path).f_frsize)
                return
            try:
                os.posix_fallocate(fd, 0, self.size)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                raise FaultError(
                    f"faults.disk_fill: {self.size} bytes do not fit in {self.path} any more "
                    f"({self._space()[1]} bytes free now: something else took space since)"
                ) from None
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
