"""What ``/proc`` says about a process: state, parent, process group, start time, cgroups.

One parser for the whole package (faults, process targets, the supervisor, the undo log's
expiry helper, Chaos Toolkit process activities). A pid alone is not an identity — pids are
reused — but a pid with its kernel start time names one process forever; that pair is how
the plugin addresses processes everywhere.

Standard library only, and importing no sibling: the stdlib-only helpers that run as
``python -I -S script.py`` (the expiry helper, the supervisor) load this file by its path.
"""

from __future__ import annotations

import os
from typing import NamedTuple


class Stat(NamedTuple):
    """The fields of ``/proc/PID/stat`` the plugin uses."""

    pid: int
    state: str  # R running, S sleeping, T stopped, Z zombie, ...
    ppid: int
    pgrp: int
    start: int  # clock ticks since boot: with the pid it names one process forever


def stat(pid: int) -> Stat | None:
    """The parsed ``/proc/PID/stat`` of ``pid``, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself contain ") ": split at the last one.
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return Stat(pid, fields[0].decode("ascii", "replace"), int(fields[1]), int(fields[2]), int(fields[19]))
    except (IndexError, ValueError):
        return None


def start_time(pid: int) -> int | None:
    """The kernel start time of ``pid`` (clock ticks since boot), None when it does not exist."""
    found = stat(pid)
    return None if found is None else found.start


def state(pid: int) -> str | None:
    """The state letter of ``pid`` (R, S, T stopped, Z zombie, ...), None when it does not exist."""
    found = stat(pid)
    return None if found is None else found.state


def same_process(pid: int, start: int | None) -> bool:
    """Whether ``pid`` still is the process that had ``start`` (guards against pid reuse)."""
    current = start_time(pid)
    return current is not None and (start is None or current == start)


def alive(pid: int, start: int | None = None) -> bool:
    """Whether ``pid`` (with that start time, when given) exists and is not a zombie."""
    found = stat(pid)
    return found is not None and (start is None or found.start == start) and found.state != "Z"


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` is left that is not a zombie (an unreaped leader is gone)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            found = stat(int(entry))
            if found is not None and found.pgrp == pgid and found.state != "Z":
                return True
    return False


def cgroups(pid: int) -> dict[str, str] | None:
    """``/proc/PID/cgroup`` as {controller: path}; the cgroup v2 (unified) path is under key ``""``.

    None when the process does not exist.
    """
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    found: dict[str, str] = {}
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                found[controller] = parts[2]
    return found


def identity(pid: int) -> str | None:
    """``pid:START``: the string that names one process for locks and claims, None when it is gone."""
    start = start_time(pid)
    return None if start is None else f"{pid}:{start}"


__all__ = ["Stat", "alive", "cgroups", "group_alive", "identity", "same_process", "start_time", "stat", "state"]
