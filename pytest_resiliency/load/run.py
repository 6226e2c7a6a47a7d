"""One load run: what the ``load`` fixture returns (``traffic = load(url, ...)``).

A :class:`LoadRun` starts locust out of process (:mod:`.processes`; locust is never imported
here: it monkey-patches the interpreter with gevent, which deadlocks pytest and kills xdist
workers), follows the sink's events into the experiment's timeline (:mod:`.tail`,
:mod:`.ingest`), watches the workers of a distributed run (:mod:`.roster`), and answers for
the load: wait for it, read its stats (:mod:`.stats`) and ledger (:mod:`.readback`), stop it.
A sink watchdog inside locust ends the run if pytest itself dies.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .. import validate
from .errors import LoadError
from .ingest import Ingest
from .processes import DEFAULT_GRACE, LocustProcess, LocustProcesses, locust_environment
from .readback import HttpReadBack
from .records import CLUSTER_ENV, WORKER_LOCAL_ENV, WORKER_NAME_ENV
from .roster import WorkerRoster, master_port
from .spec import LoadSpec, checked
from .stats import live_stats, locust_stats
from .tail import EventsTail

if TYPE_CHECKING:
    from ..experiment import Experiment

DIED_CHECK = 0.2  # seconds: how soon wait_recovered() notices a load that died


class LoadRun:
    """A running load: wait for it, read its stats and ledger, stop it.

    Returned by the ``load`` fixture. It is an evidence source of the experiment (stopped
    at the end of the test before measurement) and a context manager (stopped on exit).
    """

    def __init__(
        self,
        spec: LoadSpec,
        experiment: Experiment,
        workdir: Path,
        start_timeout: float = 60.0,
        grace: float = DEFAULT_GRACE,
    ) -> None:
        self.spec = spec
        self.experiment = experiment
        self.workdir = workdir
        self.start_timeout = start_timeout
        self.grace = grace
        self.events_path = workdir / "events.bin"
        self.json_path = workdir / "locust"  # locust appends ".json"
        self.processes = LocustProcesses(workdir)
        self.died: str | None = None
        self.died_reported = False  # the death was already raised to the test; do not report it twice
        self.finished = False
        self._stopping = threading.Event()
        self._stopped = False
        self._lock = threading.Lock()
        self.roster: WorkerRoster | None = None
        if spec.distributed:
            timeout = spec.workers_timeout if spec.workers_timeout is not None else start_timeout
            self.roster = WorkerRoster(spec, experiment, master_port(spec), timeout, self._fail, self._stopping)
        self.ingest: Ingest = self.roster.ingest if self.roster is not None else Ingest(experiment.timeline)
        self._tail = EventsTail(self.events_path, self.ingest.feed, self._idle, self._tail_done)

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> LoadRun:
        """Start locust and return once it has loaded the locustfiles (or raise :class:`LoadError`)."""
        self.events_path.touch()
        env = locust_environment(self.events_path)
        try:
            roster = self.roster
            if roster is not None:
                roster.started()
                self.processes.spawn(self.command, "master", {**env, CLUSTER_ENV: self.spec.cluster_json()})
                for name in self.spec.local_worker_names():
                    command = self.spec.worker_command(roster.master_host, roster.port)
                    self.processes.spawn(command, name, {**env, WORKER_NAME_ENV: name, WORKER_LOCAL_ENV: "1"})
            else:
                self.processes.spawn(self.command, "master", env)
            self._tail.start()
            ready = self.ingest.wait(lambda: "init" in self.ingest.meta or self._ended(), self.start_timeout)
            if self.died or self.finished:
                raise LoadError(self.died or f"locust ended before it started\n{self.log_tail()}")
            if not ready:
                raise LoadError(
                    f"locust did not load its locustfiles within {self.start_timeout:g}s "
                    f"({' '.join(self.command)})\n{self.log_tail()}"
                )
        except BaseException:
            self.died_reported = True
            self.stop(grace=2.0)
            raise
        return self

    def stop(self, grace: float | None = None) -> None:
        """Stop the load (SIGTERM, then SIGKILL after ``grace``), reap every process, drain the events.

        Idempotent; called at the end of the test, on ``with`` exit, and at interpreter exit.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._stopping.set()
        self.processes.stop(self.grace if grace is None else grace)
        self._tail.finish()
        if not self.died and self.events_path.exists():
            with contextlib.suppress(OSError):
                self.events_path.unlink()  # a million requests are tens of MB; the timeline has them

    def __enter__(self) -> LoadRun:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.processes.running and not self._stopped

    @property
    def command(self) -> list[str]:
        return self.spec.master_command(self.json_path, self.master_port)

    @property
    def pids(self) -> list[int]:
        return self.processes.pids

    @property
    def master(self) -> LocustProcess | None:
        return self.processes.master

    @property
    def workers(self) -> list[LocustProcess]:
        return self.processes.workers

    @property
    def logs(self) -> list[Path]:
        return self.processes.logs

    def log_tail(self) -> str:
        return self.processes.log_tail()

    # -- following the events ----------------------------------------------------------

    def _ended(self) -> bool:
        return self.died is not None or self.finished

    def _idle(self) -> bool:
        """Between reads of the events file: a process that ended on its own, then the workers' deadlines."""
        if self._stopping.is_set():
            return False
        if self._check_exit():
            return True
        if self.roster is not None:
            self.roster.check()
        return False

    def _tail_done(self) -> None:
        if self.roster is not None:
            self.roster.settle()
        self.ingest.poke()

    def _check_exit(self) -> bool:
        """Notice a locust process that ended on its own: finished (``duration``) or died."""
        ended = self.processes.exited()
        if ended is None:
            return False
        role, proc, code = ended
        timeline = self.experiment.timeline
        if role == "master" and code == 0:
            self.finished = True
            timeline.mark(time.time(), "load-finished", "locust", exit_code=code)
        else:
            self.died = f"locust {role} (pid {proc.pid}) exited with code {code}\n{self.log_tail()}"
            timeline.mark(time.time(), "load-died", f"locust {role}", exit_code=code)
        return True

    def _fail(self, message: str) -> None:
        """The load can no longer be trusted: abort the experiment (a test ERROR) naming why."""
        if self.died is not None:
            return
        self.died = message
        self.died_reported = True  # the experiment's abort reports it; the fixture must not repeat it
        self.ingest.poke()
        self.experiment.abort(message)

    def _raise_if_died(self) -> None:
        if self.died:
            self.died_reported = True
            raise LoadError(self.died)

    # -- waiting ---------------------------------------------------------------------

    def wait_steady(self, timeout: float | str = "30s", successes: int | None = None) -> LoadRun:
        """Block until every user is spawned and ``successes`` requests succeeded (default: the criteria's)."""
        seconds: float = checked(validate.duration, timeout, "timeout", positive=True)
        need: int = (
            self.experiment.criteria.successes if successes is None else checked(validate.count, successes, "successes")
        )
        ingest = self.ingest
        ok = ingest.wait(lambda: self._ended() or ("spawned" in ingest.meta and ingest.successes >= need), seconds)
        self._raise_if_died()
        if not ok or ingest.successes < need:
            errors = ", ".join(f"{name} x{n}" for name, n in ingest.errors.most_common(5)) or "none"
            state = "started" if "start" in ingest.meta else "not started (waiting for workers?)"
            workers = ""
            if self.roster is not None:
                joined = ", ".join(self.roster.joined) or "none"
                workers = f", workers joined: {joined} of {self.spec.expected_workers}"
            raise LoadError(
                f"load did not become steady within {seconds:g}s: run {state}{workers}, "
                f"{'all users spawned' if 'spawned' in ingest.meta else 'users still spawning'}, "
                f"{ingest.requests} requests, {ingest.successes} succeeded (needed {need}), errors: {errors}"
                + ("" if ingest.requests else f"\nlocust never produced a request\n{self.log_tail()}")
            )
        return self

    def wait_recovered(self, timeout: float | str = "30s") -> bool:
        """Block until the recovery criteria hold after the last fault; ``False`` at the deadline.

        The verdict, not this call, decides whether the test passes; a dead load raises.
        """
        deadline = time.monotonic() + checked(validate.duration, timeout, "timeout")
        exp = self.experiment
        while True:
            self._raise_if_died()  # a lost worker or a dead locust: the evidence cannot be trusted
            left = deadline - time.monotonic()
            # In slices, so that a locust process dying (which does not abort the experiment) is noticed.
            if exp.wait_recovered(timeout=max(0.0, min(DIED_CHECK, left))):
                return True
            self._raise_if_died()
            last = exp.last_injection
            if left <= DIED_CHECK or exp.aborted or self._ended():
                return False
            if last is not None and time.time() >= last + exp.criteria.timeout + exp.criteria.window:
                return False

    # -- results ---------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """What the load saw so far: counts, error rate, success latency percentiles (seconds), writes."""
        return {
            **live_stats(self.experiment.timeline, self.ingest),
            "lost_workers": [w["name"] for w in self.lost],
            "clock_uncertainty": self.clock_uncertainty,
        }

    def report(self) -> dict[str, Any]:
        """Locust's own final stats (its ``--json-file``) and the run's settings, builtins only."""
        s = self.spec
        return {
            "url": s.url,
            "users": s.users,
            "rate": s.rate,
            "writes": s.writes,
            "workers": s.workers,
            "remote_workers": s.remote_workers,
            "locustfiles": [str(p) for p in s.locustfiles] or ["(built-in HTTP scenario)"],
            "requests_ingested": self.ingest.requests,
            "ledger": dict(self.ingest.writes),
            "errors": dict(self.ingest.errors.most_common(20)),
            "died": self.died,
            "stats": locust_stats(self.json_path.with_name(self.json_path.name + ".json")),
            **({"workers": self.roster.report()} if self.roster is not None else {}),
        }

    def read_back(self, keys: Iterable[str] | None = None) -> list[str]:
        """The keys present in the store: ``GET read_path`` for every key the ledger holds.

        Refused writes are read back too: a key refused once and acknowledged on a retry must
        be found (its best outcome is ``ok``), and a refused write the store applied anyway is
        what ``failed_present`` counts.

        200 means present, 404 absent; anything else (after retries) raises, because a
        read-back that cannot tell must not be counted as a loss.
        """
        if keys is None:
            keys = self.experiment.timeline.snapshot().write_keys
        return HttpReadBack(self.spec.url, self.spec.read_path, self.spec.request_timeout).present(keys)

    # -- distributed runs --------------------------------------------------------------

    @property
    def master_port(self) -> int | None:
        """The master's TCP port in a distributed run, else None."""
        return self.roster.port if self.roster is not None else None

    @property
    def joined(self) -> dict[str, dict[str, Any]]:
        return self.roster.joined if self.roster is not None else {}

    @property
    def lost(self) -> list[dict[str, Any]]:
        return self.roster.lost if self.roster is not None else []

    @property
    def refused(self) -> list[dict[str, Any]]:
        return self.roster.refused if self.roster is not None else []

    @property
    def clocks(self) -> dict[str, dict[str, Any]]:
        return self.roster.clocks if self.roster is not None else {}

    @property
    def clock_uncertainty(self) -> float:
        """The largest uncertainty (s) of the clock corrections applied; 0.0 without remote workers."""
        return self.roster.clock_uncertainty if self.roster is not None else 0.0

    def remaining_workers(self) -> list[str]:
        return self.roster.remaining() if self.roster is not None else []

    def workers_report(self) -> dict[str, Any]:
        """Who joined, who was lost (with the rate before and after), clock offsets; builtins only."""
        return self._roster("workers_report").report()

    def worker_command(self, master_host: str | None = None, name: str | None = None) -> str:
        """The shell command that joins a worker on another host to this run, to print or provision.

        ``master_host`` is the address the load host reaches this machine at (default: the
        bind address). The worker fetches the locustfiles from the master, so nothing but
        pytest-resiliency (and the modules your locustfile imports) is needed on the load host.
        """
        import shlex

        return shlex.join(self.worker_argv(master_host, name))

    def worker_argv(
        self, master_host: str | None = None, name: str | None = None, python: str = "python3"
    ) -> list[str]:
        """:meth:`worker_command` as an argument list (``python`` is the load host's interpreter)."""
        return self._roster("worker_command").worker_argv(master_host, name, python)

    def _roster(self, what: str) -> WorkerRoster:
        if self.roster is None:
            raise LoadError(f"load: {what} needs a distributed run (workers= or remote_workers= > 0)")
        return self.roster

    def __repr__(self) -> str:
        state = "died" if self.died else "running" if self.running else "stopped"
        return f"<LoadRun {self.spec.url} users={self.spec.users} pids={self.pids} {state}>"


Traffic = LoadRun  # the name before 0.2; kept so code that imports it keeps working
