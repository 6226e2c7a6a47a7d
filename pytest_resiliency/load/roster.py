"""The roster of a distributed load, as seen from pytest: who joined, who was lost, their clocks.

The locust master (its sink, :mod:`.sink.cluster`) reports its workers as meta records on
the events stream: joined, missing, quit, back, refused, and clock offsets. The roster
turns them into timeline marks and judges them: a worker refused, not every worker joined
in time, or a worker lost during the run (unless the run was told to carry on) makes the
load untrustworthy, and the roster calls ``fail`` with a message naming the workers.
"""

from __future__ import annotations

import errno
import shlex
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..timeline import Timeline
from .errors import LoadConfigError, LoadError
from .ingest import SOURCE, Ingest
from .records import CLOCK, META, WORKER_BACK, WORKER_JOINED, WORKER_MISSING, WORKER_QUIT, WORKER_REFUSED
from .spec import LoadSpec, remote_worker_argv

if TYPE_CHECKING:
    from ..experiment import Experiment

# After a first worker is lost, wait this long for others to follow (a heartbeat period and a
# check), so that killing every load host is one error naming all of them.
LOSS_SETTLE = 1.2
RATE_WINDOW = 5.0  # seconds of load before and after a lost worker compared in the report
WORKER_EVENTS = frozenset({WORKER_JOINED, WORKER_MISSING, WORKER_QUIT, WORKER_BACK, WORKER_REFUSED, CLOCK})


def master_port(spec: LoadSpec) -> int:
    """The port the master will listen on: checked free on its bind address, or a free one for 0."""
    host = "0.0.0.0" if spec.master_bind_host == "*" else spec.master_bind_host
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # like the master's own listener
        try:
            s.bind((host, spec.master_port))
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise LoadConfigError(
                    f"load: master_bind_host={spec.master_bind_host!r} is not an address of this host; "
                    "bind the interface the load hosts reach"
                ) from None
            raise LoadConfigError(
                f"load: master_port={spec.master_port} on {spec.master_bind_host} is in use ({exc.strerror}): "
                "another load or locust master? Pass master_port=<a free port>, or 0 for any free port"
            ) from None
        return int(s.getsockname()[1])


class WorkerIngest(Ingest):
    """The ingest, also handing the master's worker events to the roster, a batch at a time."""

    def __init__(self, timeline: Timeline, on_events: Callable[[list[list[Any]]], None]) -> None:
        super().__init__(timeline)
        self._on_events = on_events

    def _ingest(self, records: list[Any]) -> int:
        events = [
            rec
            for rec in records
            if isinstance(rec, list) and len(rec) > 2 and rec[0] == META and rec[1] in WORKER_EVENTS
        ]
        count = super()._ingest(records)
        if events:
            self._on_events(events)
        return count


class WorkerRoster:
    """The workers of one distributed run, their marks on the timeline, and the judgement of losses."""

    def __init__(
        self,
        spec: LoadSpec,
        experiment: Experiment,
        port: int,
        timeout: float,
        fail: Callable[[str], None],
        stopping: threading.Event,
    ) -> None:
        self.spec = spec
        self.experiment = experiment
        self.port = port
        self.timeout = timeout  # for every worker to join
        self._fail = fail
        self._stopping = stopping
        self.ingest = WorkerIngest(experiment.timeline, self.on_events)
        self.joined: dict[str, dict[str, Any]] = {}  # worker name -> what it said when it joined
        self.lost: list[dict[str, Any]] = []  # workers that went missing or quit during the run
        self.refused: list[dict[str, Any]] = []
        self.clocks: dict[str, dict[str, Any]] = {}  # worker name -> latest offset estimate
        # The largest residual uncertainty (s) of the clock corrections applied to remote workers'
        # timestamps: 0.0 when every timestamp came from the pytest host's clock.
        self.clock_uncertainty = 0.0
        self._join_deadline: float | None = None
        self._loss_deadline: float | None = None

    @property
    def master_host(self) -> str:
        """The address local workers connect to."""
        return "127.0.0.1" if self.spec.master_bind_host == "*" else self.spec.master_bind_host

    def started(self) -> None:
        """The master is starting: the wait for every worker to join begins."""
        self._join_deadline = time.monotonic() + self.timeout

    def remaining(self) -> list[str]:
        gone = {w["name"] for w in self.lost}
        return [n for n in self.joined if n not in gone]

    def worker_argv(
        self, master_host: str | None = None, name: str | None = None, python: str = "python3"
    ) -> list[str]:
        if master_host is None:
            if self.spec.master_bind_host == "*":
                raise LoadError(
                    "load: worker_command(master_host=...) needs the address load hosts reach this machine at "
                    "(the master listens on every interface)"
                )
            master_host = self.spec.master_bind_host
        return remote_worker_argv(master_host, self.port, python=python, name=name)

    # -- events ----------------------------------------------------------------------

    def on_events(self, events: list[list[Any]]) -> None:
        """The master's worker events of one batch: marks on the timeline, then a judgement."""
        timeline = self.experiment.timeline
        for _, kind, details in events:
            name = str(details.get("name") or details.get("id") or "?")
            at = float(details.get("at") or time.time())
            if kind == WORKER_JOINED:
                self.joined[name] = details
                timeline.mark(
                    at,
                    "worker-joined",
                    name,
                    host=details.get("host"),
                    pid=details.get("pid"),
                    locust=details.get("locust"),
                    plugin=details.get("plugin"),
                )
            elif kind == CLOCK:
                self.clocks[name] = details
                self.clock_uncertainty = max(
                    self.clock_uncertainty,
                    float(details.get("max_uncertainty_s") or 0.0),
                    float(details.get("uncertainty_s") or 0.0),
                )
                timeline.mark(
                    at, "clock", name, offset_s=details.get("offset_s"), uncertainty_s=details.get("uncertainty_s")
                )
            elif kind == WORKER_BACK:
                timeline.mark(at, "worker-back", name)
            elif kind == WORKER_REFUSED:
                self.refused.append(details)
                timeline.mark(at, "worker-refused", name, reason=details.get("reason"))
                self._fail(f"load: worker {name!r} was refused: it {details.get('reason')}")
            elif kind in (WORKER_MISSING, WORKER_QUIT) and (not self._stopping.is_set() or details.get("final")):
                # ``final``: no answer to the master's roll call as the run ended (killed just before)
                self._lose(kind, name, at, details)
        if self._loss_deadline is not None and not self.remaining():
            self.judge_losses()  # nobody left to wait for

    def _lose(self, kind: str, name: str, at: float, details: dict[str, Any]) -> None:
        silent = float(details.get("silent_s") or 0.0) if kind == WORKER_MISSING else 0.0
        how = f"went missing (no message for {silent:.1f}s)" if kind == WORKER_MISSING else "disconnected"
        # ``since``: when it was last heard from, the end of its share of the load
        lost = {"name": name, "at": at, "since": at - silent, "how": how, "users": int(details.get("users") or 0)}
        self.lost.append(lost)
        self.experiment.timeline.mark(at, kind, name, users=lost["users"])
        if self._loss_deadline is None:
            self._loss_deadline = time.monotonic() + LOSS_SETTLE

    def check(self) -> None:
        """Called while the events are followed: judge losses after the settle time, and late joiners."""
        now = time.monotonic()
        if self._loss_deadline is not None and now >= self._loss_deadline:
            self.judge_losses()
        deadline = self._join_deadline
        if deadline is not None and now >= deadline:
            self._join_deadline = None
            if len(self.joined) < self.spec.expected_workers:
                self._fail(self._not_joined_message())

    def settle(self) -> None:
        """The events ended: judge losses still waiting for their settle time."""
        if self._loss_deadline is not None:
            self.judge_losses()

    def judge_losses(self) -> None:
        """After the settle time: an error naming every lost worker, or a reported rate loss."""
        self._loss_deadline = None
        if not self.lost:
            return
        start = self.experiment.started_at
        lost = ", ".join(
            f"{w['name']!r} {w['how']} at +{w['at'] - start:.1f}s ({w['users']} user{'' if w['users'] == 1 else 's'})"
            for w in self.lost
        )
        left = self.remaining()
        if not left:
            self._fail(f"load: every worker is gone, no load is running: {lost}")
        elif self.spec.on_worker_loss == "error":
            self._fail(
                f"load: {lost}; {len(left)} of {len(self.joined)} workers left ({', '.join(left)}). A lost worker "
                "cuts the load silently (locust does not hand its users to the others); pass "
                "on_worker_loss='continue' to carry on with the rest"
            )

    def _not_joined_message(self) -> str:
        spec = self.spec
        joined = ", ".join(
            f"{n} ({'local' if d.get('local') else d.get('host') or '?'} pid {d.get('pid')})"
            for n, d in self.joined.items()
        )
        if spec.remote_names:
            missing = [n for n in [*spec.local_worker_names(), *spec.remote_names] if n not in self.joined]
            absent = ", ".join(map(repr, missing))
        else:
            local = [n for n in spec.local_worker_names() if n not in self.joined]
            remote = spec.remote_workers - sum(1 for d in self.joined.values() if not d.get("local"))
            absent = ", ".join([*map(repr, local), *([f"{remote} remote worker(s)"] if remote > 0 else [])])
        refused = "".join(f"; refused: {d.get('name')!r} ({d.get('reason')})" for d in self.refused)
        if "start" in self.ingest.meta:  # locust counted them all, but not every one introduced itself
            refused += (
                "; locust counted every worker, so some joined without pytest-resiliency's sink "
                "(plain `locust --worker`?) and their requests are not evidence"
            )
        host = "<this host>" if spec.master_bind_host == "*" else spec.master_bind_host
        if spec.remote_workers and host.startswith("127."):
            refused += f"; the master listens on {host} only: pass master_bind_host=<the address load hosts reach>"
        command = shlex.join(self.worker_argv(host))
        return (
            f"load: {len(self.joined)} of {spec.expected_workers} workers joined within {self.timeout:g}s "
            f"(workers_timeout, default --resiliency-load-start-timeout): joined: {joined or 'none'}; "
            f"not joined: {absent}{refused}. Each load host runs `{command}` and must reach "
            f"{host}:{self.port} over TCP (the master's only port)"
        )

    # -- report ----------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """Who joined, who was lost (with the load's rate before and after), clock offsets; builtins only."""
        evidence = self.experiment.timeline.snapshot()
        try:
            sid = evidence.strings.index(SOURCE)
        except ValueError:
            sid = -1
        starts = [t for t, src in zip(evidence.op_start, evidence.op_source, strict=True) if src == sid]
        first, last = min(starts, default=0.0), max(starts, default=0.0)

        def rate(lo: float, hi: float) -> float | None:
            lo = max(lo, first)  # only over time the load was running
            span = hi - lo
            return sum(1 for t in starts if lo <= t < hi) / span if span > 0.5 else None

        lost = []
        for w in self.lost:
            at, since = float(w["at"]), float(w["since"])
            before = rate(since - RATE_WINDOW, since)
            lost.append({**w, "rps_before": before, "rps_after": rate(at, min(at + RATE_WINDOW, last))})
        return {
            "expected": self.spec.expected_workers,
            "master": f"{self.spec.master_bind_host}:{self.port}",
            "joined": {
                n: {k: d.get(k) for k in ("host", "pid", "local", "locust", "plugin")} for n, d in self.joined.items()
            },
            "lost": lost,
            "refused": [{k: d.get(k) for k in ("name", "reason")} for d in self.refused],
            "clocks": {
                n: {k: d.get(k) for k in ("offset_s", "uncertainty_s", "max_uncertainty_s", "rtt_s")}
                for n, d in self.clocks.items()
            },
            "clock_uncertainty_s": self.clock_uncertainty,
        }
