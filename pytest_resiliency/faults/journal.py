"""Former name of the undo log (:mod:`.undo`), kept so old imports keep working.

"Journal" now means only the JSON results file (``--resiliency-json``); the on-disk record of
active faults and their undo recipes is the undo log. ``--resiliency-journal-dir`` keeps its name.
"""

from __future__ import annotations

from ..procfs import same_process
from ..procfs import start_time as process_start
from .claims import TargetLock
from .undo import ENV_DIR, Entry, entries, log_dir, recover, run_action, spawn_expiry, undo

journal_dir = log_dir

__all__ = [
    "ENV_DIR",
    "Entry",
    "TargetLock",
    "entries",
    "journal_dir",
    "process_start",
    "recover",
    "run_action",
    "same_process",
    "spawn_expiry",
    "undo",
]
