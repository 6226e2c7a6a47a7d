"""Claims: no two faults hold one target at once, in this process or across pytest processes.

A fault claims the *identities* of its target just before it acts: strings that name the
real thing, however the user addressed it (a process is ``process PID@START`` from
``/proc/PID/stat`` whether it was given as a service, a pid or a name; a proxy is its
process; a filesystem is its device). In this process a second fault of the same kind on an
identity is refused with a :class:`FaultError`; faults of other kinds may share it. Across
processes (xdist workers) an exclusive ``flock`` per identity makes the second one wait
until the first reverts, or fail naming the holder after ``timeout``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import tenacity

from ..errors import FaultError
from . import undo


class Claimant(Protocol):
    """What a claim needs to know of its fault, for the refusal message."""

    @property
    def kind(self) -> str: ...

    def describe(self) -> str: ...

    @property
    def target(self) -> str | None: ...


class TargetLock:
    """An exclusive ``flock`` on one identity, so two pytest processes never fault it at once."""

    def __init__(self, key: str, directory: Path | None = None) -> None:
        self.key = key
        digest = hashlib.sha256(key.encode()).hexdigest()[:24]
        self.path = (directory or undo.log_dir()) / "locks" / f"{digest}.lock"
        self._fd: int | None = None

    def acquire(self, timeout: float, holder: str) -> None:
        """Take the lock, waiting up to ``timeout`` seconds; ``TimeoutError`` names the holder."""
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(BlockingIOError),
            stop=tenacity.stop_after_delay(timeout),
            wait=tenacity.wait_exponential(multiplier=0.005, max=0.1),
            reraise=True,
        )
        try:
            retrying(fcntl.flock, fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                other = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            finally:
                os.close(fd)
            raise TimeoutError(f"{self.key} is being faulted by {other} (waited {timeout:g}s)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing the descriptor releases the flock


@dataclass
class Claim:
    """The identities one fault holds; :meth:`release` gives them back (idempotent)."""

    kind: str
    keys: list[str]
    owner: object
    released: bool = field(default=False)

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        to_unlock: list[TargetLock] = []
        with _registry_lock:
            for key in self.keys:
                if _active.get((self.kind, key)) is self.owner:
                    del _active[(self.kind, key)]
                held = _held.get(key)
                if held is None:
                    continue
                if held[1] > 1:
                    _held[key] = (held[0], held[1] - 1)
                else:
                    del _held[key]
                    to_unlock.append(held[0])
        for lock in to_unlock:
            lock.release()


_registry_lock = threading.Lock()
_active: dict[tuple[str, str], Claimant] = {}  # (kind, identity) -> the fault holding it here
_held: dict[str, tuple[TargetLock, int]] = {}  # identity -> its file lock and how many faults here use it


def claim(fault: Claimant, keys: list[str], holder: str, timeout: float) -> Claim:
    """Claim ``keys`` for ``fault``: refuse an overlap in this process, wait for other processes.

    Locks are taken in sorted order so two faults claiming overlapping sets never deadlock.
    """
    keys = sorted(set(keys))
    kind = fault.kind
    with _registry_lock:
        for key in keys:
            existing = _active.get((kind, key))
            if existing is not None and existing is not fault:
                same = "" if existing.target == fault.target else f", the same target: {key}"
                raise FaultError(
                    f"{fault.describe()}: {fault.target} already has an active {kind} fault "
                    f"({existing.describe()}{same}); revert it before injecting another"
                )
        for key in keys:
            _active[(kind, key)] = fault
    taken = Claim(kind, [], fault)
    try:
        for key in keys:
            _lock_one(key, holder, timeout)
            taken.keys.append(key)
    except TimeoutError as exc:
        with _registry_lock:
            for key in keys:
                if _active.get((kind, key)) is fault:
                    del _active[(kind, key)]
        taken.release()
        raise FaultError(f"{fault.describe()}: {exc}") from None
    except BaseException:
        with _registry_lock:
            for key in keys:
                if _active.get((kind, key)) is fault:
                    del _active[(kind, key)]
        taken.release()
        raise
    return taken


def _lock_one(key: str, holder: str, timeout: float) -> None:
    with _registry_lock:
        held = _held.get(key)
        if held is not None:  # another fault of this process holds the file lock: share it
            _held[key] = (held[0], held[1] + 1)
            return
    lock = TargetLock(key)
    lock.acquire(timeout, holder)
    with _registry_lock:
        held = _held.get(key)
        _held[key] = (lock, 1) if held is None else (held[0], held[1] + 1)
    if held is not None:  # another thread of this process took it meanwhile: keep one
        lock.release()


__all__ = ["Claim", "TargetLock", "claim"]
