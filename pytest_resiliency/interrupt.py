"""Ctrl-C to the pytest-xdist controller: workers that own an active fault revert it now.

The faults act in the workers, but an interrupt often reaches only the controller (``kill
-INT``, a CI runner's cancel). xdist then shuts the workers down through execnet, which lets
a worker's running test, fault and all, go on for 5 s before interrupting it. The
controller's ``pytest_keyboard_interrupt`` (a hook, not a signal handler) calls
:func:`interrupt_workers`, which sends SIGTERM to each child process that owns an entry in
the on-disk fault journal; the worker's handler, in place exactly while a fault is active,
unwinds the faults (:mod:`pytest_resiliency.faults.termination`). Workers without a fault
are left to xdist, so a run without faults is unchanged.

Standard library only and no import of the fault machinery (about 0.1 s), because it runs
on the interrupt path, where every tenth of a second is a paused service.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path


def interrupt_workers(journal: Path) -> list[int]:
    """SIGTERM every child of this process that owns an active fault in ``journal``; the pids."""
    me = os.getpid()
    owners: list[int] = []
    for path in sorted((journal / "active").glob("*.json")):
        try:
            pid = json.loads(path.read_text()).get("owner_pid")
        except (OSError, ValueError, AttributeError):
            continue  # removed meanwhile (reverted), or half-written
        if isinstance(pid, int) and pid not in owners and parent_of(pid) == me:
            owners.append(pid)
    signalled = []
    for pid in owners:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            signalled.append(pid)
    return signalled


def parent_of(pid: int) -> int | None:
    """The parent pid of ``pid`` from /proc, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    return int(stat[stat.rfind(b")") + 2 :].split()[1])
