"""Ready datastore targets built on ``service``: Redis, PostgreSQL, an etcd cluster, HAProxy.

Each target is a fault target (``faults.kill(redis)``), has a ``url``, a ``put(key)`` and a
``classify`` for the open-loop writer, a ``reader`` for ``experiment.verify_writes`` and
``all_keys()`` (a full scan, the independent truth), and ``truth()``: the server's own log
events ("ready", "elected leader", "server DOWN") with the server's own timestamps.

Binaries come from Debian packages; :func:`require` names the package when one is missing,
and the fixtures turn that into a skip with the reason.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...errors import TargetError


class MissingBinary(TargetError):
    """A server binary is not installed; the message names the Debian package."""


def require(binary: str, package: str, extra_dirs: tuple[str, ...] = ()) -> str:
    """The path of ``binary`` (on PATH or in ``extra_dirs`` globs), or :class:`MissingBinary`."""
    found = shutil.which(binary)
    if found:
        return found
    for pattern in extra_dirs:
        for directory in sorted(glob.glob(pattern), reverse=True):  # the newest version first
            candidate = os.path.join(directory, binary)
            if os.access(candidate, os.X_OK):
                return candidate
    raise MissingBinary(f"{binary} not found: install the Debian package {package} (apt-get install {package})")


@dataclass(frozen=True)
class LogEvent:
    """A server's own statement about itself, at the server's own time (epoch seconds)."""

    name: str
    at: float
    member: str
    line: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "at": self.at, "member": self.member, "line": self.line}


def log_events(
    service: Any, member: str, events: dict[str, re.Pattern[str]], log_time: Callable[[str], float | None]
) -> list[LogEvent]:
    """The ``events`` (name -> pattern) found in ``service``'s log, each at the server's own time."""
    found = []
    for line in service.log_lines("|".join(f"(?:{p.pattern})" for p in events.values())):
        at = log_time(line.text)
        for event, pattern in events.items():
            if at is not None and pattern.search(line.text):
                found.append(LogEvent(f"{member} {event}", at, member, line.text))
    return found


def mark_truth(experiment: Any, events: list[LogEvent], since: float | None = None) -> None:
    """Put the server log events (after ``since``) on the experiment's timeline and chart."""
    for event in events:
        if since is None or event.at >= since:
            experiment.mark(event.name, at=event.at, member=event.member, source="server log")
