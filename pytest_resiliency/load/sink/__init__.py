"""The sink: runs *inside* locust and ships every request and ledger write to pytest.

Everything in this package (the sink here, the built-in scenario in :mod:`.scenarios`) is
loaded by locust only; the pytest process never imports it, because importing locust there
would monkey-patch it with gevent.

Loaded through ``locustfiles/resiliency_sink.py`` (passed to ``locust -f`` before the
scenario). In a single process and in the master it appends its batches to the file named
by ``$RESILIENCY_EVENTS`` (one frame each, see ``records``), which pytest follows; in a worker
it sends them to the master as a custom message, so workers on other hosts reach the timeline too.

User locustfiles mark their writes with the ledger helper::

    from pytest_resiliency.load.sink import ledger

    key = ledger.new_key()
    with self.client.post("/orders", json={"key": key}, catch_response=True) as response:
        ledger.from_response(key, response)

Without the sink (plain ``locust -f yourfile.py``) the helper does nothing, so the
locustfile keeps working on its own.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets
import signal
import time
from collections.abc import Callable
from typing import Any

from ..records import (
    CLUSTER_ENV,
    EVENTS_ENV,
    MESSAGE_TYPE,
    META,
    PARENT_ENV,
    SCENARIO_OPTION,
    encode_frame,
    error_name,
    write_record,
    write_status_for_error,
    write_status_for_http,
)

FLUSH_EVERY = 0.05  # seconds: the live delay the sink adds, well under a recovery window
FLUSH_SIZE = 2000  # records: bounds the memory of a burst
PARENT_CHECK_EVERY = 0.5
MAX_LABELS = 10_000  # request names kept as one shared object each (a bound for names made of ids)
MAX_PENDING = 10_000  # keys made and not yet written: far more than any run has in flight

__all__ = ["Ledger", "ledger", "register"]


class Sink:
    """Buffers records and flushes them to the events file or, in a worker, to the master."""

    def __init__(self, environment: Any) -> None:
        from locust.runners import MasterRunner, WorkerRunner

        self.environment = environment
        self.buffer: list[Any] = []  # records: lists, and tuples for requests
        runner = environment.runner
        self.worker = isinstance(runner, WorkerRunner)
        self.master = isinstance(runner, MasterRunner)
        path = os.environ.get(EVENTS_ENV)
        self._fd: int | None = None
        if not self.worker and path:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.cluster: Any = None
        self.agent: Any = None
        if self.master:
            from .cluster import Master

            settings = json.loads(os.environ.get(CLUSTER_ENV) or "{}")
            self.cluster = Master(environment, settings, self.meta, self._write)
            runner.register_message(MESSAGE_TYPE, self._on_worker_batch)
        elif self.worker:
            from .cluster import Worker

            self.agent = Worker(environment)

    def add(self, record: list[Any]) -> None:
        self.buffer.append(record)
        if len(self.buffer) >= FLUSH_SIZE:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        batch, self.buffer = self.buffer, []
        if self.worker:
            self.environment.runner.send_message(MESSAGE_TYPE, batch)
        else:
            self._write(batch)

    def _write(self, batch: list[list[Any]]) -> None:
        if self._fd is None or not batch:
            return
        view = memoryview(encode_frame(batch))  # one frame per batch: the ingest never sees half a batch
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def _on_worker_batch(self, environment: Any, msg: Any, **_: Any) -> None:
        if isinstance(msg.data, list):
            self.cluster.on_batch(msg.node_id, msg.data)

    def meta(self, what: str, **details: Any) -> None:
        self.add([META, what, details])
        self.flush()

    def close(self) -> None:
        self.flush()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


_sink: Sink | None = None
_labels: dict[tuple[str, str], str] = {}
_registered = False
_option_registered = False


class Ledger:
    """Marks writes in a user locustfile: each one ``ok``, ``fail`` or ``indeterminate``.

    A key from :meth:`new_key` is *pending* until its outcome is recorded. When the run stops,
    locust kills its users mid-request: a write already sent may be stored by the server and
    never answered. Every key still pending then goes on the ledger as ``indeterminate``
    (:meth:`abandon`), so a stored write is never "unexpected" and an unsent one never "lost".
    """

    def __init__(self) -> None:
        self._salt = secrets.token_hex(3)
        self._counter = itertools.count(1)
        self.run_id = "w"
        self._pending: dict[str, float] = {}  # key -> when it was made, oldest first

    def new_key(self, prefix: str | None = None) -> str:
        """A key unique across processes and hosts of this run, pending until its outcome is recorded."""
        key = f"{prefix or self.run_id}-{self._salt}-{next(self._counter)}"
        pending = self._pending
        if len(pending) >= MAX_PENDING:  # keys made and never written: forget the oldest
            del pending[next(iter(pending))]
        pending[key] = time.time()
        return key

    def discard(self, key: str) -> None:
        """A key from :meth:`new_key` that will not be written after all: not pending any more."""
        self._pending.pop(key, None)

    def abandon(self) -> list[list[Any]]:
        """Every pending key as an ``indeterminate`` write (the run stopped with it in flight)."""
        pending, self._pending = self._pending, {}
        return [write_record(key, made, None, "indeterminate") for key, made in pending.items()]

    def write(self, key: str, start: float, status: str, ack: float | None = None) -> None:
        """Record one write; ``ack`` defaults to now for an ``ok`` write."""
        if status == "ok" and ack is None:
            ack = time.time()
        record = write_record(str(key), float(start), ack if status == "ok" else None, status)
        self._pending.pop(key, None)
        if _sink is not None:
            _sink.add(record)

    def ok(self, key: str, start: float, ack: float | None = None) -> None:
        self.write(key, start, "ok", ack)

    def fail(self, key: str, start: float) -> None:
        self.write(key, start, "fail")

    def indeterminate(self, key: str, start: float) -> None:
        self.write(key, start, "indeterminate")

    def from_response(self, key: str, response: Any, start: float | None = None) -> str:
        """Classify a locust response (``catch_response=True`` or not) and record it; returns the status.

        2xx is ``ok``; a refused connection is ``fail``; a timeout or a reset after sending
        is ``indeterminate``; 502/504 are ``indeterminate``; any other status is ``fail``.
        """
        meta = getattr(response, "request_meta", None) or {}
        begun = start if start is not None else meta.get("start_time") or time.time()
        error = getattr(response, "error", None)
        if error is not None and not getattr(response, "status_code", 0):
            status = write_status_for_error(error)
        else:
            status = write_status_for_http(int(getattr(response, "status_code", 0) or 0))
        ack = None
        if status == "ok":
            elapsed = meta.get("response_time")
            ack = begun + elapsed / 1000.0 if isinstance(elapsed, (int, float)) else time.time()
        self.write(key, begun, status, ack)
        return status


ledger = Ledger()


def _on_request(
    request_type: str = "",
    name: str = "",
    response_time: float = 0.0,
    response_length: int = 0,
    response: Any = None,
    context: Any = None,
    exception: BaseException | None = None,
    start_time: float | None = None,
    url: str | None = None,
    **_: Any,
) -> None:
    """Once per request, in the load generator's hot loop: kept to a few hundred nanoseconds."""
    sink = _sink
    if sink is None:
        return
    latency = (response_time or 0.0) / 1000.0
    start = start_time if start_time is not None else time.time() - latency
    key = (request_type, name)
    label = _labels.get(key)
    if label is None:  # one object per label: pickled once per batch, interned once by the ingest
        label = f"{request_type} {name}" if request_type else name
        if len(_labels) < MAX_LABELS:
            _labels[key] = label
    # request_record() inlined, as a tuple of atoms: the garbage collector stops tracking it
    if exception is None:
        sink.buffer.append((start, latency, 1, label, None))
    else:
        sink.buffer.append((start, latency, 0, label, error_name(exception)))
    if len(sink.buffer) >= FLUSH_SIZE:
        sink.flush()


def _flusher() -> None:
    import gevent

    while True:
        gevent.sleep(FLUSH_EVERY)
        if _sink is not None:
            with contextlib.suppress(Exception):  # a failed flush must not kill the flusher; the next retries
                _sink.flush()


def _parent_watch(parent: int) -> None:
    """Quit when pytest is gone (SIGKILLed, crashed): no orphan load after any outcome.

    pytest is the parent of a subprocess, the grandparent of a process forked by the zygote:
    it is watched through a pidfd (exact: no pid reuse), else as the parent.
    """
    import gevent

    gone = _parent_gone(parent)
    while True:
        gevent.sleep(PARENT_CHECK_EVERY)
        if gone():
            os.kill(os.getpid(), signal.SIGTERM)
            gevent.sleep(10)
            os._exit(3)


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _parent_gone(parent: int) -> Callable[[], bool]:
    import select

    try:
        fd = os.pidfd_open(parent)
    except ProcessLookupError:
        return lambda: True
    except (AttributeError, OSError):  # no pidfd here (old kernel): the parent, else a live pid
        return lambda: os.getppid() != parent and not _pid_exists(parent)
    return lambda: bool(select.select([fd], [], [], 0)[0])  # readable once the process has ended


def _on_init(environment: Any, **_: Any) -> None:
    global _sink
    import gevent

    _sink = Sink(environment)
    if not _sink.worker:
        _sink.meta("init", pid=os.getpid(), master=_sink.master)
    if _sink.cluster is not None:
        _sink.cluster.start()
        # Added after the master runner's own listener, so it runs first (quitting fires in
        # reverse): the roll call must reach the workers before the master tells them to quit.
        environment.events.quitting.add_listener(_on_master_quitting)
    if _sink.agent is not None:
        _sink.agent.hello()
    gevent.spawn(_flusher)
    parent = os.environ.get(PARENT_ENV)
    if parent and parent.isdigit():
        gevent.spawn(_parent_watch, int(parent))


def _on_test_start(environment: Any, **_: Any) -> None:
    with contextlib.suppress(AttributeError, ValueError):
        scenario_settings(environment)  # sets the ledger's run id, also in workers
    if _sink is not None and not _sink.worker:
        _sink.meta("start", pid=os.getpid(), master=_sink.master)


def _on_spawning_complete(user_count: int = 0, **_: Any) -> None:
    if _sink is not None and not _sink.worker:
        _sink.meta("spawned", users=user_count)


def _on_test_stop(environment: Any, **_: Any) -> None:
    """The users are stopped (killed mid-request, if need be): what is still pending was in flight."""
    if _sink is not None:
        for record in ledger.abandon():
            _sink.add(record)
    _flush_at_stop(environment)


def _flush_at_stop(environment: Any, **_: Any) -> None:
    """At ``test_stop``, and at ``quitting``: locust's shutdown fires that *before* it stops the
    users, so nothing is abandoned there, only flushed."""
    if _sink is not None:
        if _sink.cluster is not None:
            _sink.cluster.on_stopping()
        _sink.flush()


def _on_master_quitting(environment: Any, **_: Any) -> None:
    if _sink is not None and _sink.cluster is not None:
        _sink.cluster.roll_call()
        _sink.flush()


def _on_quit(**_: Any) -> None:
    if _sink is not None:
        _sink.close()
        if _sink.agent is not None:
            _sink.agent.cleanup()


def _on_parser(parser: Any, **_: Any) -> None:
    parser.add_argument(SCENARIO_OPTION, type=str, default="", help="pytest-resiliency: scenario settings (JSON)")


def register() -> None:
    """Attach the sink to locust's events; called once by the sink locustfile."""
    global _registered
    if _registered:
        return
    import locust

    from .cluster import install_clock_hook

    events: Any = locust.events
    _registered = True
    install_clock_hook()  # a test hook: a no-op unless $RESILIENCY_TEST_CLOCK_OFFSET is set
    register_option()
    events.init.add_listener(_on_init)
    events.request.add_listener(_on_request)
    events.test_start.add_listener(_on_test_start)
    events.spawning_complete.add_listener(_on_spawning_complete)
    events.test_stop.add_listener(_on_test_stop)
    events.quitting.add_listener(_flush_at_stop)
    events.quit.add_listener(_on_quit)


def register_option() -> None:
    """Declare ``--resiliency-scenario`` (the built-in scenario needs it even without the sink)."""
    global _option_registered
    if _option_registered:
        return
    import locust

    events: Any = locust.events
    _option_registered = True
    events.init_command_line_parser.add_listener(_on_parser)


def scenario_settings(environment: Any) -> dict[str, Any]:
    """The built-in scenario's settings, forwarded by the master to every worker."""
    raw = getattr(environment.parsed_options, SCENARIO_OPTION.lstrip("-").replace("-", "_"), "") or "{}"
    settings: dict[str, Any] = json.loads(raw)
    if settings.get("run_id"):
        ledger.run_id = str(settings["run_id"])
    return settings
