"""The distributed run, inside locust: who joined, who went missing, whose clock is off.

Loaded by locust only (never by pytest). The master keeps a registry of its workers from
their ``HELLO`` (name, host, versions) and from every message they send; a worker silent
for ``missing_after`` seconds, marked missing by locust, or gone from the master's clients
is reported as a meta record the load run (pytest side) turns into a timeline mark and a test error.

Clock offsets are measured like NTP: the master sends ``PING(t0)``, the worker answers
with its own time ``tw``, the master reads ``t1`` on receipt. The worker's offset is
``tw - (t0 + t1) / 2``, exact to within half the round trip, whatever the delays of each
direction. The sample with the shortest round trip of the last few is applied to every
timestamp the worker sends before it is written, and its half round trip is the residual
uncertainty reported with it. Workers the load run started on the pytest host share its
clock and are not corrected.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ... import __version__ as PLUGIN_VERSION
from ..records import (
    CLOCK,
    CLOCK_OFFSET_ENV,
    HELLO,
    META,
    PING,
    PONG,
    WORKER_BACK,
    WORKER_JOINED,
    WORKER_LOCAL_ENV,
    WORKER_MISSING,
    WORKER_NAME_ENV,
    WORKER_QUIT,
    WORKER_REFUSED,
    WORKER_TMP_ENV,
    WRITE,
)

CHECK_EVERY = 0.2  # seconds between liveness checks in the master
ROLL_CALL = 1.0  # seconds the master waits, as the run ends, for every worker to answer a last ping
SYNC_EVERY = 1.0  # seconds between clock samples of one worker
FIRST_BURST = 5  # samples taken right at join, 20 ms apart, so the first estimate is already good
WINDOW = 8  # samples kept; the one with the shortest round trip is applied
# Test hook (documented): make the worker report this plugin version instead of its own.
VERSION_HOOK_ENV = "RESILIENCY_TEST_PLUGIN_VERSION"

Emit = Callable[..., None]


def versions() -> dict[str, str]:
    """The versions a master and its workers must share: locust's and the plugin's."""
    import locust

    return {"locust": str(locust.__version__), "plugin": os.environ.get(VERSION_HOOK_ENV) or PLUGIN_VERSION}


def version_mismatch(master: dict[str, str], worker: dict[str, str]) -> str | None:
    """Why a worker's versions cannot join this master, or ``None`` when they match exactly."""
    diffs = [
        f"{label} {worker.get(key) or '(unknown)'} (the master runs {master.get(key)})"
        for key, label in (("locust", "locust"), ("plugin", "pytest-resiliency"))
        if worker.get(key) != master.get(key)
    ]
    if not diffs:
        return None
    return "runs " + " and ".join(diffs) + "; install the same versions on every load host"


def install_clock_hook() -> float:
    """Shift ``time.time`` by ``$RESILIENCY_TEST_CLOCK_OFFSET`` seconds (a test hook; 0 when unset).

    Locust timestamps requests with ``time.time()`` looked up on the module, so a worker
    with this set behaves like a host whose clock is that far off.
    """
    raw = os.environ.get(CLOCK_OFFSET_ENV, "")
    if not raw or "--worker" not in sys.argv:
        return 0.0  # only ever a worker: the master's clock is the pytest host's by definition
    offset = float(raw)
    real = time.time
    time.time = lambda: real() + offset
    return offset


def correct(batch: list[list[Any]], offset: float) -> list[list[Any]]:
    """The batch's timestamps moved from the worker's clock to the master's, in place."""
    if not offset:
        return batch
    for rec in batch:
        if not rec:
            continue
        kind = rec[0]
        if kind == WRITE:
            rec[2] -= offset
            if rec[3] is not None:
                rec[3] -= offset
        elif kind != META:
            rec[0] -= offset
    return batch


@dataclass
class Clock:
    """One worker's offset estimate: the shortest round trip of the last ``WINDOW`` samples."""

    samples: deque[tuple[float, float, float]] = field(default_factory=lambda: deque(maxlen=WINDOW))
    offset: float | None = None
    uncertainty: float = 0.0
    max_uncertainty: float = 0.0
    max_abs_offset: float = 0.0
    steps: int = 0  # times the worker's clock was seen to jump

    def add(self, t0: float, tw: float, t1: float) -> bool:
        """Add a sample; returns whether the applied estimate changed.

        Each sample bounds the true offset to ``offset ± rtt/2``. A sample whose bounds miss
        the applied estimate's proves the worker's clock stepped (or drifted): the older
        samples are dropped, so the correction follows within one sampling period.
        """
        rtt = max(0.0, t1 - t0)
        offset = tw - (t0 + t1) / 2
        if self.offset is not None and abs(offset - self.offset) > rtt / 2 + self.uncertainty:
            self.samples.clear()
            self.steps += 1
        self.samples.append((rtt, offset, t1))
        rtt_best, offset, _ = min(self.samples)
        changed = self.offset is None or abs(offset - self.offset) > 1e-4 or abs(rtt_best / 2 - self.uncertainty) > 1e-4
        self.offset, self.uncertainty = offset, rtt_best / 2
        self.max_uncertainty = max(self.max_uncertainty, self.uncertainty)
        self.max_abs_offset = max(self.max_abs_offset, abs(offset))
        return changed


@dataclass
class WorkerState:
    id: str
    name: str
    host: str = ""
    pid: int = 0
    local: bool = False
    status: str = "joining"  # joined, missing, gone, refused
    last_seen: float = field(default_factory=time.monotonic)
    users: int = 0
    clock: Clock = field(default_factory=Clock)
    pending: list[list[list[Any]]] = field(default_factory=list)
    seq: int = 0
    last_clock_emit: float = 0.0
    emitted: tuple[float, float] | None = None  # the (offset, uncertainty) last reported

    @property
    def synced(self) -> bool:
        return self.local or self.clock.offset is not None


class Master:
    """The master's view of its workers; corrects their batches and reports what happens to them."""

    def __init__(self, environment: Any, settings: dict[str, Any], emit: Emit, write: Callable[[list[Any]], None]):
        self.environment = environment
        self.runner = environment.runner
        self.emit = emit
        self.write = write
        self.missing_after = float(settings.get("missing_after") or 3.0)
        skew = settings.get("max_clock_skew")
        self.max_clock_skew = None if skew is None else float(skew)
        expected = settings.get("expected") or []
        self.expected = [str(n) for n in expected] if isinstance(expected, list) else []
        self.versions = versions()
        self.workers: dict[str, WorkerState] = {}
        self.stopping = False
        self._last_check = time.monotonic()
        self._roll_call: tuple[float, list[WorkerState], Any] | None = None  # (asked, present, gevent Event)
        runner = self.runner
        runner.register_message(HELLO, self._on_hello)
        runner.register_message(PONG, self._on_pong)
        environment.events.heartbeat_sent.add_listener(self._on_heartbeat)

    def start(self) -> None:
        import gevent

        gevent.spawn(self._loop)

    # -- messages from workers -------------------------------------------------------

    def _state(self, node_id: str) -> WorkerState:
        state = self.workers.get(node_id)
        if state is None:
            state = self.workers[node_id] = WorkerState(id=node_id, name=node_id)
        state.last_seen = time.monotonic()
        roll_call = self._roll_call
        if roll_call is not None and all(w.last_seen >= roll_call[0] for w in roll_call[1]):
            roll_call[2].set()  # every worker answered the roll call
        if state.status == "missing" and not self.stopping:
            state.status = "joined"
            self.emit(WORKER_BACK, name=state.name, id=node_id, at=time.time())
        return state

    def _on_heartbeat(self, client_id: str = "", **_: Any) -> None:
        if client_id in self.workers:
            self._state(client_id)

    def _on_hello(self, environment: Any, msg: Any, **_: Any) -> None:
        data = msg.data if isinstance(msg.data, dict) else {}
        state = self._state(msg.node_id)
        name = str(data.get("name") or msg.node_id)
        state.name, state.host, state.pid = name, str(data.get("host", "")), int(data.get("pid") or 0)
        state.local = bool(data.get("local"))
        info = {
            "name": name,
            "id": msg.node_id,
            "host": state.host,
            "pid": state.pid,
            "local": state.local,
            "locust": data.get("locust"),
            "plugin": data.get("plugin"),
            "at": time.time(),
        }
        reason = version_mismatch(self.versions, {"locust": data.get("locust", ""), "plugin": data.get("plugin", "")})
        if reason is None and any(
            w.name == name and w.id != msg.node_id and w.status == "joined" for w in self.workers.values()
        ):
            reason = "has the same name as a worker that already joined; give each worker its own --name"
        if reason is None and self.expected and not state.local and name not in self.expected:
            reason = f"is not one of the expected remote workers ({', '.join(self.expected)})"
        if reason is not None:
            self._refuse(state, reason, info)
            return
        state.status = "joined"
        self.emit(WORKER_JOINED, **info)
        if not state.local:
            import gevent

            gevent.spawn(self._burst, state)

    def _on_pong(self, environment: Any, msg: Any, **_: Any) -> None:
        t1 = time.time()
        state = self._state(msg.node_id)
        data = msg.data if isinstance(msg.data, dict) else {}
        try:
            t0, tw = float(data["t0"]), float(data["tw"])
        except (KeyError, TypeError, ValueError):
            return
        if state.status == "refused" or state.local:
            return  # a local worker shares the pytest host's clock; its answer only proves it is alive
        first = state.clock.offset is None
        steps = state.clock.steps
        changed = state.clock.add(t0, tw, t1)
        stepped = state.clock.steps != steps
        clock = state.clock
        assert clock.offset is not None
        if self.max_clock_skew is not None and abs(clock.offset) - clock.uncertainty > self.max_clock_skew:
            # proven beyond the limit: even the most favourable end of the estimate is too far
            ahead = "ahead of" if clock.offset > 0 else "behind"
            self._refuse(
                state,
                f"has a clock {abs(clock.offset):.3f}s {ahead} the pytest host (±{clock.uncertainty * 1000:.1f} ms), "
                f"beyond max_clock_skew={self.max_clock_skew:g}s; synchronise its clock (chrony/NTP) "
                "or raise --resiliency-load-max-clock-skew",
                {"offset_s": clock.offset, "uncertainty_s": clock.uncertainty},
            )
            return
        now = time.monotonic()
        # Report the first estimate, every new largest uncertainty (the max over the marks is
        # what was applied), and a move beyond the last reported uncertainty, at most every 2 s.
        grew = changed and clock.uncertainty > 0 and clock.uncertainty >= clock.max_uncertainty
        last = state.emitted
        moved = last is not None and abs(clock.offset - last[0]) > max(last[1], 0.001)
        if first or grew or stepped or (moved and now - state.last_clock_emit >= 2.0):
            state.last_clock_emit = now
            state.emitted = (clock.offset, clock.uncertainty)
            self.emit(
                CLOCK,
                name=state.name,
                id=state.id,
                offset_s=clock.offset,
                uncertainty_s=clock.uncertainty,
                max_uncertainty_s=clock.max_uncertainty,
                rtt_s=min(clock.samples)[0],
                samples=len(clock.samples),
                steps=clock.steps,
                at=t1,
            )
        if first and state.pending:
            pending, state.pending = state.pending, []
            for batch in pending:
                self.write(correct(batch, clock.offset))

    def on_batch(self, node_id: str, batch: list[Any]) -> None:
        """A worker's records: corrected to the master's clock and written, or held until it is known."""
        state = self._state(node_id)
        if state.status == "refused":
            return  # its evidence is not trusted; the run is failing anyway
        if not state.synced:
            state.pending.append(batch)
            return
        self.write(correct(batch, 0.0 if state.local else state.clock.offset or 0.0))

    def _refuse(self, state: WorkerState, reason: str, info: dict[str, Any]) -> None:
        state.status = "refused"
        state.pending = []
        details = {k: v for k, v in info.items() if k not in ("name", "id", "reason", "at")}
        self.emit(WORKER_REFUSED, name=state.name, id=state.id, reason=reason, at=time.time(), **details)
        with contextlib.suppress(Exception):
            from locust.rpc import Message

            self.runner.server.send_to_client(Message("quit", None, state.id))  # type: ignore[no-untyped-call]

    # -- the master's own loop ---------------------------------------------------------

    def _ping(self, state: WorkerState) -> None:
        state.seq += 1
        with contextlib.suppress(Exception):  # a broken connection shows up as silence
            self.runner.send_message(PING, {"seq": state.seq, "t0": time.time()}, client_id=state.id)

    def _burst(self, state: WorkerState) -> None:
        import gevent

        for _ in range(FIRST_BURST):
            if state.status not in ("joined", "joining"):
                return
            self._ping(state)
            gevent.sleep(0.02)

    def _loop(self) -> None:
        import gevent

        last_sync = time.monotonic()
        while True:
            gevent.sleep(CHECK_EVERY)
            with contextlib.suppress(Exception):  # the watchdog must outlive any one bad check
                self.check()
            if time.monotonic() - last_sync >= SYNC_EVERY:
                last_sync = time.monotonic()
                for state in list(self.workers.values()):
                    if state.status == "joined" and not state.local:
                        self._ping(state)

    def check(self) -> None:
        """Report workers gone from the master's clients, marked missing by locust, or silent too long."""
        if self.stopping:
            return
        clients = self.runner.clients
        now = time.monotonic()
        lag, self._last_check = now - self._last_check, now
        if lag > CHECK_EVERY + 1.0:
            return  # the master itself stalled: let it read what the workers sent meanwhile first
        for state in list(self.workers.values()):
            if state.status != "joined":
                continue
            node = clients.get(state.id) if hasattr(clients, "get") else None
            if node is not None:
                users = sum((getattr(node, "user_classes_count", None) or {}).values())
                state.users = users or state.users
            if node is None:
                state.status = "gone"
                self.emit(WORKER_QUIT, name=state.name, id=state.id, users=state.users, at=time.time())
            elif getattr(node, "state", "") == "missing" or now - state.last_seen > self.missing_after:
                state.status = "missing"
                self.emit(
                    WORKER_MISSING,
                    name=state.name,
                    id=state.id,
                    users=state.users,
                    silent_s=round(now - state.last_seen, 3),
                    at=time.time(),
                )

    def on_stopping(self) -> None:
        """The run is ending: a worker that left before this is reported, then departures are normal."""
        if not self.stopping:
            self.check()
        self.stopping = True

    def roll_call(self) -> None:
        """As the master quits: every worker must answer a ping within ``ROLL_CALL`` seconds.

        A worker killed just before the end of the test has not been silent long enough to
        be missing; without this it would end the run unreported.
        """
        from gevent.event import Event

        self.on_stopping()
        asked = time.monotonic()
        present = [w for w in self.workers.values() if w.status == "joined"]
        answered = Event()
        self._roll_call = (asked, present, answered)
        for state in present:
            self._ping(state)
        if present:
            answered.wait(ROLL_CALL)  # set by the last answer (see _state)
        self._roll_call = None
        for state in present:
            if state.last_seen < asked:
                state.status = "missing"
                self.emit(
                    WORKER_MISSING,
                    name=state.name,
                    id=state.id,
                    users=state.users,
                    silent_s=round(time.monotonic() - state.last_seen, 3),
                    at=time.time(),
                    final=True,
                )

    def summary(self) -> list[dict[str, Any]]:
        return [
            {
                "name": w.name,
                "id": w.id,
                "status": w.status,
                "offset_s": w.clock.offset,
                "uncertainty_s": w.clock.uncertainty,
                "max_uncertainty_s": w.clock.max_uncertainty,
            }
            for w in self.workers.values()
        ]


class Worker:
    """A worker's side: introduce itself, answer clock pings, clean its private directory at quit."""

    def __init__(self, environment: Any) -> None:
        self.environment = environment
        self.runner = environment.runner
        self.hooked_offset = float(os.environ.get(CLOCK_OFFSET_ENV) or 0.0)
        self.name = os.environ.get(WORKER_NAME_ENV) or f"{socket.gethostname()}:{os.getpid()}"
        self.local = os.environ.get(WORKER_LOCAL_ENV) == "1" and not self.hooked_offset
        self.runner.register_message(PING, self._on_ping)

    def hello(self) -> None:
        self.runner.send_message(
            HELLO,
            {"name": self.name, "host": socket.gethostname(), "pid": os.getpid(), "local": self.local, **versions()},
        )

    def _on_ping(self, environment: Any, msg: Any, **_: Any) -> None:
        tw = time.time()
        data = msg.data if isinstance(msg.data, dict) else {}
        self.runner.send_message(PONG, {"seq": data.get("seq"), "t0": data.get("t0"), "tw": tw})

    @staticmethod
    def cleanup() -> None:
        path = os.environ.get(WORKER_TMP_ENV)
        if path and os.path.basename(path).startswith("resiliency-worker-"):
            shutil.rmtree(path, ignore_errors=True)
