"""The on-disk journal of active faults, their undo recipes, per-target locks and the expiry helper.

Why on disk: a pytest process can be SIGKILLed (or lose its host) while a fault acts. Each
active fault therefore writes one JSON entry *before* it acts, holding an undo recipe made of
builtins (send SIGCONT to pid P if it is still the same process, unlink a file, delete an
nftables table...). The entry is removed after a clean revert. Two things consume leftovers:

* the **expiry helper**: a detached ``python -I -S journal.py expire ENTRY`` started per fault
  that cannot end by itself (pause, disk fill, nftables). It sleeps until the fault's maximum
  duration and then runs the undo recipe if the entry is still there. Its stdin is a pipe
  from pytest: when it closes after a clean revert the helper sees the entry gone and exits;
  when it closes because pytest died the helper keeps waiting for the deadline.
* ``pytest --resiliency-recover``: undoes every entry whose owner process is dead.

This module imports only the standard library and no sibling module, so the helper starts
in a few milliseconds and does not depend on the package being importable.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ENV_DIR = "RESILIENCY_JOURNAL_DIR"
UNDO_OPS = ("signal", "signal_group", "unlink", "rmtree", "nft_delete_table", "cgroup_remove")


def journal_dir() -> Path:
    """Where entries and locks live: ``$RESILIENCY_JOURNAL_DIR`` or a per-user directory in /tmp."""
    configured = os.environ.get(ENV_DIR)
    base = Path(configured) if configured else Path(tempfile.gettempdir()) / f"pytest-resiliency-{os.getuid()}"
    (base / "active").mkdir(parents=True, exist_ok=True)
    (base / "locks").mkdir(parents=True, exist_ok=True)
    return base


def process_start(pid: int) -> int | None:
    """The kernel start time of ``pid`` (clock ticks since boot): with the pid it names one process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    return int(fields[19])


def same_process(pid: int, start: int | None) -> bool:
    """Whether ``pid`` still is the process that had ``start`` (guards against pid reuse)."""
    current = process_start(pid)
    return current is not None and (start is None or current == start)


def _alive(pid: int, start: int | None) -> bool:
    if not same_process(pid, start):
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] != b"Z"


# -- entries ------------------------------------------------------------------------------------


class Entry:
    """One active fault on disk. ``undo`` is a list of actions (dicts) run in order on recovery."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    @classmethod
    def create(cls, kind: str, target: str | None, description: str, expires_at: float, nodeid: str | None) -> Entry:
        ident = uuid.uuid4().hex[:12]
        data: dict[str, Any] = {
            "id": ident,
            "kind": kind,
            "target": target,
            "description": description,
            "owner_pid": os.getpid(),
            "owner_start": process_start(os.getpid()),
            "nodeid": nodeid,
            "created_at": time.time(),
            "expires_at": expires_at,
            "undo": [],
        }
        entry = cls(journal_dir() / "active" / f"{ident}.json", data)
        entry.save()
        return entry

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data))
        os.replace(tmp, self.path)

    def set_undo(self, actions: list[dict[str, Any]]) -> None:
        self.data["undo"] = actions
        self.save()

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    @property
    def owner_alive(self) -> bool:
        return _alive(int(self.data["owner_pid"]), self.data.get("owner_start"))


def entries(directory: Path | None = None) -> list[Entry]:
    base = (directory or journal_dir()) / "active"
    found = []
    for path in sorted(base.glob("*.json")):
        try:
            found.append(Entry(path, json.loads(path.read_text())))
        except (OSError, ValueError):
            continue  # removed meanwhile, or half-written by a process that died: nothing to undo
    return found


# -- undo actions -------------------------------------------------------------------------------


def run_action(action: dict[str, Any]) -> str | None:
    """Run one undo action; returns what was done (None when there was nothing left to undo)."""
    op = action.get("op")
    if op in ("signal", "signal_group"):
        pid, start, signum = int(action["pid"]), action.get("start"), int(action["signal"])
        if not same_process(pid, start):
            return None
        try:
            if op == "signal_group":
                os.killpg(pid, signum)
            else:
                os.kill(pid, signum)
        except ProcessLookupError:
            return None
        return f"sent {signal.Signals(signum).name} to {'group ' if op == 'signal_group' else ''}pid {pid}"
    if op == "unlink":
        path = Path(action["path"])
        try:
            path.unlink()
        except FileNotFoundError:
            return None
        return f"removed {path}"
    if op == "rmtree":
        path = Path(action["path"])
        if not path.exists():
            return None
        shutil.rmtree(path, ignore_errors=True)
        return f"removed {path}"
    if op == "nft_delete_table":
        command = ["nft", "delete", "table", action.get("family", "inet"), action["table"]]
        if action.get("netns"):
            command = ["ip", "netns", "exec", action["netns"], *command]
        done = subprocess.run(command, capture_output=True, timeout=10, check=False)
        return f"deleted nftables table {action['table']}" if done.returncode == 0 else None
    if op == "cgroup_remove":
        return _cgroup_remove(Path(action["path"]), action.get("restore", {}))
    raise ValueError(f"unknown undo action {op!r}; known: {', '.join(UNDO_OPS)}")


def _cgroup_remove(path: Path, restore: dict[str, str]) -> str | None:
    """Move the processes of a cgroup back where they came from (or to the root), then remove it."""
    if not path.exists():
        return None
    root = path
    while root.parent != root and (root.parent / "cgroup.procs").exists():
        root = root.parent
    with contextlib.suppress(OSError):
        for pid in (path / "cgroup.procs").read_text().split():
            destination = Path(restore.get(pid, str(root)))
            with contextlib.suppress(OSError):
                (destination / "cgroup.procs").write_text(pid)
    for _ in range(50):
        try:
            path.rmdir()
            return f"removed cgroup {path}"
        except FileNotFoundError:
            return None
        except OSError:
            time.sleep(0.02)
    return None


def undo(entry: Entry) -> list[str]:
    """Run every undo action of ``entry`` (errors become lines) and delete the entry."""
    done = []
    for action in entry.data.get("undo", []):
        try:
            result = run_action(action)
        except Exception as exc:  # recovery reports and continues; one broken action must not hide others
            result = f"FAILED {action.get('op')}: {type(exc).__name__}: {exc}"
        if result:
            done.append(result)
    entry.remove()
    return done


def recover(directory: Path | None = None, include_live: bool = False) -> list[tuple[dict[str, Any], list[str]]]:
    """Undo the entries left by dead processes (or every entry with ``include_live``)."""
    report = []
    for entry in entries(directory):
        if entry.owner_alive and not include_live:
            continue
        report.append((entry.data, undo(entry)))
    return report


# -- expiry helper ------------------------------------------------------------------------------


def spawn_expiry(entry: Entry) -> subprocess.Popen[bytes]:
    """Start the detached helper that ends the fault at its deadline even if pytest is SIGKILLed."""
    return subprocess.Popen(
        [sys.executable, "-I", "-S", os.path.abspath(__file__), "expire", str(entry.path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C in the terminal must not kill the dead-man switch
        env={**os.environ, ENV_DIR: str(entry.path.parent.parent)},
    )


def _expire(path: Path) -> int:
    try:
        deadline = float(json.loads(path.read_text())["expires_at"])
    except (OSError, ValueError, KeyError):
        return 0
    stdin_open = True
    while True:
        left = deadline - time.time()
        if left <= 0:
            break
        if stdin_open:
            ready, _, _ = select.select([sys.stdin], [], [], left)
            if ready:
                stdin_open = bool(os.read(sys.stdin.fileno(), 4096))
                if not stdin_open and not path.exists():
                    return 0  # reverted cleanly
        else:
            time.sleep(min(left, 1.0))
            if not path.exists():
                return 0  # recovered by --resiliency-recover
    try:
        entry = Entry(path, json.loads(path.read_text()))
    except (OSError, ValueError):
        return 0
    undo(entry)
    return 0


# -- per-target locks ---------------------------------------------------------------------------


class TargetLock:
    """An exclusive ``flock`` on one target, so two pytest processes never fault it at once."""

    def __init__(self, key: str) -> None:
        self.key = key
        digest = hashlib.sha256(key.encode()).hexdigest()[:24]
        self.path = journal_dir() / "locks" / f"{digest}.lock"
        self._fd: int | None = None

    def acquire(self, timeout: float, holder: str) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    try:
                        other = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
                    finally:
                        os.close(fd)
                    raise TimeoutError(f"{self.key} is being faulted by {other} (waited {timeout:g}s)") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing the descriptor releases the flock


@contextlib.contextmanager
def locked(key: str, timeout: float, holder: str) -> Iterator[TargetLock]:
    lock = TargetLock(key)
    lock.acquire(timeout, holder)
    try:
        yield lock
    finally:
        lock.release()


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "expire":
        return _expire(Path(argv[1]))
    print("usage: journal.py expire ENTRY", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
