"""The undo log: the on-disk record of active faults, their undo recipes, and the expiry helper.

Why on disk: a pytest process can be SIGKILLed (or lose its host) while a fault acts. Each
active fault therefore writes one JSON entry *before* it acts, holding an undo recipe made of
builtins (send SIGCONT to pid P if it is still the same process, unlink a file, delete an
nftables table or a network namespace...). The entry is removed after a clean revert. Two
things consume leftovers:

* the **expiry helper**: a detached ``python -I -S undo.py expire ENTRY`` started per fault
  that cannot end by itself (pause, disk fill, nftables). It sleeps until the fault's maximum
  duration and then runs the undo recipe if the entry is still there. Its stdin is a pipe
  from pytest: when it closes after a clean revert the helper sees the entry gone and exits;
  when it closes because pytest died the helper keeps waiting for the deadline.
* ``pytest --resiliency-recover``: undoes every entry whose owner process is dead
  (:func:`recover_report`).

Not to be confused with the JSON results journal (``--resiliency-json``) or a Chaos Toolkit
journal: the option keeps its name (``--resiliency-journal-dir``) for users. This module
imports only the standard library (and :mod:`pytest_resiliency.procfs`, by path when run as a
script), so the helper starts in a few milliseconds without the package being importable.
"""

from __future__ import annotations

import contextlib
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
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any


def _procfs() -> ModuleType:
    """:mod:`pytest_resiliency.procfs`, also when this file runs as a script outside the package."""
    try:
        from .. import procfs

        return procfs
    except ImportError:  # ``python -I -S undo.py``: no package context, load the sibling file by path
        import importlib.util

        spec = importlib.util.spec_from_file_location("_resiliency_procfs", Path(__file__).parent.parent / "procfs.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module


if TYPE_CHECKING:
    from .. import procfs
else:
    procfs = _procfs()

ENV_DIR = "RESILIENCY_JOURNAL_DIR"  # the name users know (--resiliency-journal-dir); the log is the undo log
UNDO_OPS = ("signal", "signal_group", "unlink", "rmtree", "nft_delete_table", "cgroup_remove", "netns_delete")


def log_dir() -> Path:
    """Where entries and locks live: ``$RESILIENCY_JOURNAL_DIR`` or a per-user directory in /tmp."""
    configured = os.environ.get(ENV_DIR)
    base = Path(configured) if configured else Path(tempfile.gettempdir()) / f"pytest-resiliency-{os.getuid()}"
    (base / "active").mkdir(parents=True, exist_ok=True)
    (base / "locks").mkdir(parents=True, exist_ok=True)
    return base


# -- entries ------------------------------------------------------------------------------------


class Entry:
    """One active fault (or a namespace made for one) on disk.

    ``undo`` is a list of actions (dicts) run in order on recovery. ``instant`` marks a fault
    that acts at once and leaves nothing to undo (a kill, a restart): its entry only says that
    it was active, and recovery reports it as such instead of asking for a check by hand.
    """

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    @classmethod
    def create(
        cls,
        kind: str,
        target: str | None,
        description: str,
        expires_at: float,
        nodeid: str | None,
        *,
        instant: bool = False,
    ) -> Entry:
        ident = uuid.uuid4().hex[:12]
        data: dict[str, Any] = {
            "id": ident,
            "kind": kind,
            "target": target,
            "description": description,
            "owner_pid": os.getpid(),
            "owner_start": procfs.start_time(os.getpid()),
            "nodeid": nodeid,
            "created_at": time.time(),
            "expires_at": expires_at,
            "instant": instant,
            "undo": [],
        }
        entry = cls(log_dir() / "active" / f"{ident}.json", data)
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
        return procfs.alive(int(self.data["owner_pid"]), self.data.get("owner_start"))


def entries(directory: Path | None = None) -> list[Entry]:
    base = (directory or log_dir()) / "active"
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
        if not procfs.same_process(pid, start):
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
    if op == "netns_delete":
        name = str(action["name"])
        if not Path("/run/netns", name).exists():
            return None
        deleted = subprocess.run(
            ["ip", "netns", "delete", name], capture_output=True, text=True, timeout=10, check=False
        )
        if deleted.returncode != 0:
            raise OSError(f"ip netns delete {name}: {deleted.stderr.strip() or deleted.returncode}")
        return f"deleted network namespace {name}"
    raise ValueError(f"unknown undo action {op!r}; known: {', '.join(UNDO_OPS)}")


def _cgroup_remove(path: Path, restore: dict[str, str]) -> str | None:
    """Move the processes of a cgroup back where they came from (or to the root), then remove it.

    Works for cgroup v1 and v2 alike (both have ``cgroup.procs``). The kernel refuses to remove
    a cgroup for a moment after its last process left it, hence the bounded retry (this module
    is standard library only, so no tenacity here).
    """
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


def recover_report(directory: Path | None = None) -> tuple[list[str], int]:
    """``pytest --resiliency-recover``: undo what dead runs left, and say what was done.

    Returns the lines to print and the exit status (1 when an undo action failed). Three
    outcomes per entry: undone (each action listed, or "already gone"); nothing to undo (an
    instantaneous fault such as a kill, whose entry only marked it active); and CHECK BY HAND
    (no local recipe: an AWS fault whose revert failed, a custom fault).
    """
    directory = directory or log_dir()
    live = [e for e in entries(directory) if e.owner_alive]
    report = recover(directory)
    lines = [f"pytest-resiliency: undo log {directory}"]
    failed = False
    unknown = 0
    for data, done in report:
        owner = f"pid {data['owner_pid']}" + (f", {data['nodeid']}" if data.get("nodeid") else "")
        if not data.get("undo") and data.get("instant"):
            lines.append(f"  nothing to undo for {data['description']} (left by {owner}): it acted at once")
            continue
        if not data.get("undo"):
            unknown += 1
            lines.append(f"  CHECK BY HAND {data['description']} (left by {owner}): it has no local undo recipe")
            continue
        lines.append(f"  undid {data['description']} (left by {owner}):")
        lines.extend(f"    - {what}" for what in done or ["already gone, nothing to do"])
        failed = failed or any(what.startswith("FAILED") for what in done)
    if not report:
        lines.append("  nothing to recover")
    for entry in live:
        lines.append(f"  left alone: {entry.data['description']} (pid {entry.data['owner_pid']} is still running)")
    lines.append(f"pytest-resiliency: recovered {len(report) - unknown} fault(s), {unknown} to check by hand")
    return lines, 1 if failed else 0


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
            time.sleep(min(left, 1.0))  # pytest is gone: nobody to wake us, check for recovery now and then
            if not path.exists():
                return 0  # recovered by --resiliency-recover
    try:
        entry = Entry(path, json.loads(path.read_text()))
    except (OSError, ValueError):
        return 0
    undo(entry)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "expire":
        return _expire(Path(argv[1]))
    print("usage: undo.py expire ENTRY", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
