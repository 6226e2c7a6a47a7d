"""Ready datastore targets built on ``service``: Redis, PostgreSQL, an etcd cluster, HAProxy.

Each target is a fault target (``faults.kill(redis)``), has a ``url``, a ``put(key)`` and a
``classify`` for the open-loop writer, a ``reader`` for ``experiment.verify_writes`` and
``all_keys()`` (a full scan, the independent truth), and ``truth()``: the server's own log
events ("ready", "elected leader", "server DOWN") with the server's own timestamps.

Binaries come from Debian packages; :func:`require` names the package when one is missing,
and the fixtures turn that into a skip with the reason.

What every target shares lives here: :class:`ServerTarget` (a supervised server: ``start``,
``process``, ``port``, ``truth``) and :class:`KeyedTarget` (a store client: ``put``,
``reader``, ``all_keys``). Each store's module says only what is its own: its configuration,
its readiness check and its log format.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

from ...errors import TargetError

if TYPE_CHECKING:
    from ..service import Service


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


class StoreClient(Protocol):
    """What a target needs of its client (:mod:`pytest_resiliency.load.stores`)."""

    def put(self, key: str) -> None: ...
    def present(self, keys: Iterable[str]) -> list[str]: ...
    def all_keys(self) -> list[str]: ...


class KeyedTarget:
    """A target that holds keys through its store client: writes, reads for the ledger, a full scan."""

    client: StoreClient

    def put(self, key: str) -> None:
        """One write, one attempt (no client retries); returning means acknowledged, as the store defines it."""
        self.client.put(key)

    def reader(self, keys: Iterable[str]) -> list[str]:
        """For ``experiment.verify_writes``: the keys of ``keys`` the store holds."""
        return self.client.present(keys)

    def all_keys(self) -> list[str]:
        """A full scan of the store (SCAN, ``SELECT key``, a whole-keyspace range): the independent truth."""
        return self.client.all_keys()


class ServerTarget:
    """One server run by the ``service`` fixture: the fault target, and its own log as the truth.

    A subclass sets ``service`` and ``name``, and the log ``EVENTS`` (name -> pattern) with
    ``log_time`` (a line's own timestamp, epoch seconds) that :meth:`truth` reads.
    """

    service: Service
    name: str
    EVENTS: ClassVar[dict[str, re.Pattern[str]]] = {}

    @staticmethod
    def log_time(line: str) -> float | None:
        return None

    def start(self) -> Self:
        self.service.start()
        return self

    @property
    def process(self) -> Service:
        """The fault target: ``faults.kill(target)`` kills the server's process group."""
        return self.service

    @property
    def port(self) -> int:
        assert self.service.port is not None
        return self.service.port

    def truth(self) -> list[LogEvent]:
        """The server's own log events (``EVENTS``), each at the server's own time."""
        return log_events(self.service, self.name, self.EVENTS, self.log_time)
