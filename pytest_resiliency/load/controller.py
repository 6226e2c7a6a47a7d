"""The controller: runs locust as a subprocess and tails its events into the experiment.

Locust is never imported here (it monkey-patches the interpreter with gevent, which
deadlocks pytest and kills xdist workers). A run is one master (or single) locust
process plus optional local worker processes, each in its own session so that stopping
is exact: SIGTERM, a grace period, then SIGKILL, and every child reaped. A sink watchdog
inside locust ends the run if pytest itself dies.

In a distributed run the master reports its workers (joined, missing, quit, refused, clock
offsets) as meta records on the same stream; a lost worker is evidence (a timeline mark)
and, unless the run was told to carry on, aborts the experiment naming the worker.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import errno
import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import weakref
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..budget import parse_duration
from ..measure import percentile
from ..timeline import Timeline
from .ingest import SOURCE, Ingest
from .records import (
    CLOCK,
    CLUSTER_ENV,
    EVENTS_ENV,
    META,
    PARENT_ENV,
    WORKER_BACK,
    WORKER_JOINED,
    WORKER_LOCAL_ENV,
    WORKER_MISSING,
    WORKER_NAME_ENV,
    WORKER_QUIT,
    WORKER_REFUSED,
)
from .spec import LoadError, LoadSpec, remote_worker_argv

if TYPE_CHECKING:
    from ..experiment import Experiment

DEFAULT_GRACE = 10.0
LOG_TAIL_LINES = 25
READ_BACK_THREADS = 8
READ_BACK_ATTEMPTS = 3
_TAIL_POLL = 0.01
# After a first worker is lost, wait this long for others to follow (a heartbeat period and a
# check), so that killing every load host is one error naming all of them.
LOSS_SETTLE = 1.2
RATE_WINDOW = 5.0  # seconds of load before and after a lost worker compared in the report
WORKER_EVENTS = frozenset({WORKER_JOINED, WORKER_MISSING, WORKER_QUIT, WORKER_BACK, WORKER_REFUSED, CLOCK})

_running: weakref.WeakSet[Traffic] = weakref.WeakSet()


def _stop_all_at_exit() -> None:
    for traffic in list(_running):
        traffic.stop(grace=2.0)


atexit.register(_stop_all_at_exit)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host if host not in ("*", "") else "0.0.0.0", 0))
        return int(s.getsockname()[1])


def master_port(spec: LoadSpec) -> int:
    """The port the master will listen on: checked free on its bind address, or a free one for 0."""
    host = "0.0.0.0" if spec.master_bind_host == "*" else spec.master_bind_host
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # like the master's own listener
        try:
            s.bind((host, spec.master_port))
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise LoadError(
                    f"load: master_bind_host={spec.master_bind_host!r} is not an address of this host; "
                    "bind the interface the load hosts reach"
                ) from None
            raise LoadError(
                f"load: master_port={spec.master_port} on {spec.master_bind_host} is in use ({exc.strerror}): "
                "another load or locust master? Pass master_port=<a free port>, or 0 for any free port"
            ) from None
        return int(s.getsockname()[1])


class _WorkerIngest(Ingest):
    """The ingest, also handing the master's worker events to the controller, a batch at a time."""

    def __init__(self, timeline: Timeline, on_events: Any) -> None:
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


def tail_text(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class Traffic:
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
        self.ingest: Ingest = (
            _WorkerIngest(experiment.timeline, self._on_worker_events)
            if spec.distributed
            else Ingest(experiment.timeline)
        )
        self.events_path = workdir / "events.jsonl"
        self.json_path = workdir / "locust"  # locust appends ".json"
        self.master_port: int | None = master_port(spec) if spec.distributed else None
        self.workers_timeout = spec.workers_timeout if spec.workers_timeout is not None else start_timeout
        self.joined: dict[str, dict[str, Any]] = {}  # worker name -> what it said when it joined
        self.lost: list[dict[str, Any]] = []  # workers that went missing or quit during the run
        self.refused: list[dict[str, Any]] = []
        self.clocks: dict[str, dict[str, Any]] = {}  # worker name -> latest offset estimate
        # The largest residual uncertainty (s) of the clock corrections applied to remote workers'
        # timestamps: 0.0 when every timestamp came from the pytest host's clock.
        self.clock_uncertainty = 0.0
        self._workers_deadline: float | None = None
        self._loss_deadline: float | None = None
        self.master: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        self.died: str | None = None
        self.died_reported = False  # the death was already raised to the test; do not report it twice
        self.finished = False
        self._stopping = threading.Event()
        self._drained = threading.Event()
        self._stopped = False
        self._lock = threading.Lock()
        self._tail: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> Traffic:
        """Start locust and return once it has loaded the locustfiles (or raise :class:`LoadError`)."""
        self.events_path.touch()
        env = self._environment()
        try:
            if self.master_port is not None:
                self._workers_deadline = time.monotonic() + self.workers_timeout
            master_env = {**env, CLUSTER_ENV: self.spec.cluster_json()} if self.spec.distributed else env
            self.master = self._spawn(self.spec.master_command(self.json_path, self.master_port), "master", master_env)
            if self.master_port is not None:
                host = "127.0.0.1" if self.spec.master_bind_host == "*" else self.spec.master_bind_host
                for name in self.spec.local_worker_names():
                    command = self.spec.worker_command(host, self.master_port)
                    worker_env = {**env, WORKER_NAME_ENV: name, WORKER_LOCAL_ENV: "1"}
                    self.workers.append(self._spawn(command, name, worker_env))
            _running.add(self)
            self._tail = threading.Thread(target=self._run_tail, name="resiliency-load-tail", daemon=True)
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

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])
        paths = [package_root, os.getcwd(), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        env[EVENTS_ENV] = str(self.events_path)
        env[PARENT_ENV] = str(os.getpid())
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _spawn(self, command: list[str], role: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = self.workdir / f"locust-{role}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            return subprocess.Popen(
                command,
                cwd=self.workdir,  # no stray locust.conf of the caller's directory applies
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal reaches pytest, which stops us
            )

    @property
    def command(self) -> list[str]:
        return self.spec.master_command(self.json_path, self.master_port)

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
        if self.master_port is None:
            raise LoadError("load: worker_command needs a distributed run (workers= or remote_workers= > 0)")
        if master_host is None:
            if self.spec.master_bind_host == "*":
                raise LoadError(
                    "load: worker_command(master_host=...) needs the address load hosts reach this machine at "
                    "(the master listens on every interface)"
                )
            master_host = self.spec.master_bind_host
        return remote_worker_argv(master_host, self.master_port, python=python, name=name)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in [self.master, *self.workers] if p is not None]

    def _processes(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in [self.master, *self.workers] if p is not None]

    def _ended(self) -> bool:
        return self.died is not None or self.finished

    def _run_tail(self) -> None:
        with self.events_path.open("rb") as f:
            while True:
                chunk = f.read(1 << 20)
                if chunk:
                    self.ingest.feed(chunk)
                    continue
                if self._drained.is_set():
                    break
                if not self._stopping.is_set() and self._check_exit():
                    rest = f.read()
                    if rest:
                        self.ingest.feed(rest)
                    break
                if self.master_port is not None and not self._stopping.is_set():
                    self._check_workers()
                time.sleep(_TAIL_POLL)
        if self._loss_deadline is not None:
            self._judge_losses()
        self.ingest.poke()

    # -- workers -----------------------------------------------------------------------

    def _on_worker_events(self, events: list[list[Any]]) -> None:
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
                silent = float(details.get("silent_s") or 0.0) if kind == WORKER_MISSING else 0.0
                how = f"went missing (no message for {silent:.1f}s)" if kind == WORKER_MISSING else "disconnected"
                # ``since``: when it was last heard from, the end of its share of the load
                lost = {
                    "name": name,
                    "at": at,
                    "since": at - silent,
                    "how": how,
                    "users": int(details.get("users") or 0),
                }
                self.lost.append(lost)
                timeline.mark(at, kind, name, users=lost["users"])
                if self._loss_deadline is None:
                    self._loss_deadline = time.monotonic() + LOSS_SETTLE
        if self._loss_deadline is not None and not self.remaining_workers():
            self._judge_losses()  # nobody left to wait for

    def remaining_workers(self) -> list[str]:
        gone = {w["name"] for w in self.lost}
        return [n for n in self.joined if n not in gone]

    def _check_workers(self) -> None:
        now = time.monotonic()
        if self._loss_deadline is not None and now >= self._loss_deadline:
            self._judge_losses()
        deadline = self._workers_deadline
        if deadline is not None and now >= deadline:
            self._workers_deadline = None
            if len(self.joined) < self.spec.expected_workers:
                self._fail(self._not_joined_message())

    def _judge_losses(self) -> None:
        """After the settle time: an error naming every lost worker, or a reported rate loss."""
        self._loss_deadline = None
        if not self.lost or self.died:
            return
        start = self.experiment.started_at
        lost = ", ".join(
            f"{w['name']!r} {w['how']} at +{w['at'] - start:.1f}s ({w['users']} user{'' if w['users'] == 1 else 's'})"
            for w in self.lost
        )
        left = self.remaining_workers()
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
        return (
            f"load: {len(self.joined)} of {spec.expected_workers} workers joined within {self.workers_timeout:g}s "
            f"(workers_timeout, default --resiliency-load-start-timeout): joined: {joined or 'none'}; "
            f"not joined: {absent}{refused}. Each load host runs `{self.worker_command(host)}` and must reach "
            f"{host}:{self.master_port} over TCP (the master's only port)"
        )

    def _fail(self, message: str) -> None:
        """The load can no longer be trusted: abort the experiment (a test ERROR) naming why."""
        if self.died is not None:
            return
        self.died = message
        self.died_reported = True  # the experiment's abort reports it; the fixture must not repeat it
        self.ingest.poke()
        self.experiment.abort(message)

    def _check_exit(self) -> bool:
        """Notice a locust process that ended on its own: finished (``duration``) or died."""
        for role, proc in zip(["master", *self.spec.local_worker_names()], self._processes(), strict=False):
            code = proc.poll()
            if code is None:
                continue
            if role == "master" and code == 0:
                self.finished = True
                self.experiment.timeline.mark(time.time(), "load-finished", "locust", exit_code=code)
            else:
                self.died = f"locust {role} (pid {proc.pid}) exited with code {code}\n{self.log_tail()}"
                self.experiment.timeline.mark(time.time(), "load-died", f"locust {role}", exit_code=code)
            return True
        return False

    def stop(self, grace: float | None = None) -> None:
        """Stop the load (SIGTERM, then SIGKILL after ``grace``), reap every process, drain the events.

        Idempotent; called at the end of the test, on ``with`` exit, and at interpreter exit.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._stopping.set()
        wait = self.grace if grace is None else grace
        procs = self._processes()
        if self.master is not None and self.master.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.master.send_signal(signal.SIGTERM)
            _wait(self.master, wait)
        for proc in procs:  # workers quit when the master tells them; make sure of it
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for proc in procs:
            _wait(proc, wait)
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self._drained.set()
        if self._tail is not None:
            self._tail.join(timeout=30)
        _running.discard(self)
        if not self.died and self.events_path.exists():
            with contextlib.suppress(OSError):
                self.events_path.unlink()  # a million requests are 60 MB; the timeline has them

    def __enter__(self) -> Traffic:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.master is not None and self.master.poll() is None and not self._stopped

    def log_tail(self) -> str:
        parts = []
        for log in self.logs:
            text = tail_text(log)
            if text:
                parts.append(f"--- {log.name} (last lines) ---\n{text}")
        return "\n".join(parts) or "(locust wrote nothing)"

    def _raise_if_died(self) -> None:
        if self.died:
            self.died_reported = True
            raise LoadError(self.died)

    # -- waiting ---------------------------------------------------------------------

    def wait_steady(self, timeout: float | str = "30s", successes: int | None = None) -> Traffic:
        """Block until every user is spawned and ``successes`` requests succeeded (default: the criteria's)."""
        seconds = parse_duration(timeout, "timeout")
        need = successes if successes is not None else self.experiment.criteria.successes
        ingest = self.ingest
        ok = ingest.wait(lambda: self._ended() or ("spawned" in ingest.meta and ingest.successes >= need), seconds)
        self._raise_if_died()
        if not ok or ingest.successes < need:
            errors = ", ".join(f"{name} x{n}" for name, n in ingest.errors.most_common(5)) or "none"
            state = "started" if "start" in ingest.meta else "not started (waiting for workers?)"
            workers = ""
            if self.master_port is not None:
                workers = f", workers joined: {', '.join(self.joined) or 'none'} of {self.spec.expected_workers}"
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
        end = time.time() + parse_duration(timeout, "timeout")
        exp = self.experiment
        while True:
            self._raise_if_died()  # a lost worker or a dead locust: the evidence cannot be trusted
            if exp.wait_recovered(timeout=max(0.0, min(0.2, end - time.time()))):
                return True
            self._raise_if_died()
            last = exp.last_injection
            now = time.time()
            if now >= end or exp.aborted or self._ended():
                return False
            if last is not None and now >= last + exp.criteria.timeout + exp.criteria.window:
                return False

    # -- results ---------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """What the load saw so far: counts, error rate, success latency percentiles (seconds), writes."""
        evidence = self.experiment.timeline.snapshot()
        try:
            sid = evidence.strings.index(SOURCE)
        except ValueError:
            sid = -1
        latencies: list[float] = []
        requests = failures = 0
        for src, ok, latency in zip(evidence.op_source, evidence.op_ok, evidence.op_latency, strict=True):
            if src != sid:
                continue
            requests += 1
            if ok:
                latencies.append(latency)
            else:
                failures += 1
        latencies.sort()
        ingest = self.ingest
        span = (ingest.last_start - ingest.first_start) if ingest.first_start and ingest.last_start else 0.0
        return {
            "requests": requests,
            "failures": failures,
            "error_rate": failures / requests if requests else None,
            "rps": (requests - 1) / span if span > 0 else None,
            "p50": percentile(latencies, 0.50),
            "p95": percentile(latencies, 0.95),
            "p99": percentile(latencies, 0.99),
            "max": latencies[-1] if latencies else None,
            "writes": {s: ingest.writes.get(s, 0) for s in ("ok", "fail", "indeterminate")},
            "errors": dict(ingest.errors.most_common(20)),
            "dropped": evidence.dropped,
            "lost_workers": [w["name"] for w in self.lost],
            "clock_uncertainty": self.clock_uncertainty,
        }

    def report(self) -> dict[str, Any]:
        """Locust's own final stats (its ``--json-file``) and the run's settings, builtins only."""
        entries = []
        path = self.json_path.with_name(self.json_path.name + ".json")
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            raw = []
        for entry in raw if isinstance(raw, list) else []:
            entries.append(_summarise_entry(entry))
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
            "stats": entries,
            **({"workers": self.workers_report()} if self.master_port is not None else {}),
        }

    def workers_report(self) -> dict[str, Any]:
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
            "master": f"{self.spec.master_bind_host}:{self.master_port}",
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
        wanted = sorted(set(keys))
        parts = urllib.parse.urlsplit(self.spec.url)
        local = threading.local()
        opened: list[http.client.HTTPConnection] = []

        def connection() -> http.client.HTTPConnection:
            conn: http.client.HTTPConnection | None = getattr(local, "conn", None)
            if conn is None:
                cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
                conn = cls(parts.hostname or "", parts.port, timeout=self.spec.request_timeout)
                local.conn = conn
                opened.append(conn)
            return conn

        prefix = parts.path.rstrip("/")

        def present(key: str) -> bool:
            path = prefix + self.spec.read_path.replace("{key}", urllib.parse.quote(key, safe=""))
            last = ""
            for attempt in range(READ_BACK_ATTEMPTS):
                try:
                    conn = connection()
                    conn.request("GET", path)
                    response = conn.getresponse()
                    response.read()
                    if response.status in (200, 404):
                        return response.status == 200
                    last = f"HTTP {response.status}"
                except (OSError, http.client.HTTPException) as exc:
                    last = f"{type(exc).__name__}: {exc}"
                    connection().close()
                    local.conn = None
                time.sleep(0.05 * (attempt + 1))
            raise LoadError(f"read_back: GET {path} answered {last} {READ_BACK_ATTEMPTS} times; expected 200 or 404")

        with concurrent.futures.ThreadPoolExecutor(READ_BACK_THREADS, thread_name_prefix="resiliency-readback") as pool:
            try:
                found = list(pool.map(present, wanted))
            finally:
                for conn in opened:
                    conn.close()
        return [k for k, yes in zip(wanted, found, strict=True) if yes]

    def __repr__(self) -> str:
        state = "died" if self.died else "running" if self.running else "stopped"
        return f"<Traffic {self.spec.url} users={self.spec.users} pids={self.pids} {state}>"


def _wait(proc: subprocess.Popen[bytes], seconds: float) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=seconds)


def _summarise_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """One endpoint of locust's JSON stats, percentiles from its response-time histogram."""
    histogram = entry.get("response_times") or {}
    points = sorted((float(k), int(v)) for k, v in histogram.items())
    total = sum(n for _, n in points)

    def pct(q: float) -> float | None:
        if not total:
            return None
        rank, seen = q * total, 0
        for value, n in points:
            seen += n
            if seen >= rank:
                return value
        return points[-1][0]

    requests = int(entry.get("num_requests") or 0)
    return {
        "name": entry.get("name"),
        "method": entry.get("method"),
        "num_requests": requests,
        "num_failures": int(entry.get("num_failures") or 0),
        "avg_ms": (entry.get("total_response_time") or 0) / requests if requests else None,
        "min_ms": entry.get("min_response_time"),
        "max_ms": entry.get("max_response_time"),
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
    }
