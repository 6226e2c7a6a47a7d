"""The wire format between the sink (inside locust) and the ingest (inside pytest).

Records are plain lists:

* request: ``[start, latency_s, ok, name, error]`` (``ok`` is 1 or 0, ``error`` a short name or None)
* write:   ``["w", key, start, ack, status]`` (``ack`` None unless acknowledged)
* meta:    ``["m", what, {details}]`` (``start`` when the run began, ``spawned`` when every user is up;
  the master adds the worker events below, each with ``at``, the master's wall-clock time)

The sink appends them to the events file a batch at a time, each batch one **frame**: a
4-byte little-endian length, then the batch (a list of records) pickled. Pickle is ~20x
cheaper than JSON on both ends (floats travel as 8 bytes, not as their shortest repr), which
is what keeps the sink and the ingest within a few percent of locust's own CPU per request.
The ingest unpickles with every global refused (:func:`decode_frame`), so a frame can only
ever hold lists, dicts, strings, numbers and None: nothing in it can name code to run.

In a distributed run the master also speaks to every worker over locust custom messages
(``HELLO``, ``PING``/``PONG`` for clock offsets); the worker events it reports are the
``WORKER_*`` and ``CLOCK`` meta kinds.

Both sides import this module, so it must stay free of locust, gevent and pytest.
"""

from __future__ import annotations

import io
import pickle
import re
import struct
from typing import Any

EVENTS_ENV = "RESILIENCY_EVENTS"
PARENT_ENV = "RESILIENCY_PARENT_PID"
MESSAGE_TYPE = "resiliency_events"
SCENARIO_OPTION = "--resiliency-scenario"
CLUSTER_ENV = "RESILIENCY_CLUSTER"  # the master's settings for its workers (JSON)
WORKER_NAME_ENV = "RESILIENCY_WORKER_NAME"
WORKER_LOCAL_ENV = "RESILIENCY_WORKER_LOCAL"  # "1": a worker the load run started on the pytest host
WORKER_TMP_ENV = "RESILIENCY_WORKER_TMP"  # the worker's private directory for shipped locustfiles
# Test hook: seconds added to time.time() inside a worker, to test clock-offset correction and refusal.
CLOCK_OFFSET_ENV = "RESILIENCY_TEST_CLOCK_OFFSET"
HELLO, PING, PONG = "resiliency_hello", "resiliency_ping", "resiliency_pong"
WORKER_JOINED, WORKER_MISSING, WORKER_QUIT, WORKER_BACK, WORKER_REFUSED, CLOCK = (
    "worker-joined",
    "worker-missing",
    "worker-quit",
    "worker-back",
    "worker-refused",
    "clock",
)
WRITE, META = "w", "m"
WRITE_STATUSES = ("ok", "fail", "indeterminate")
FRAME_HEADER = struct.Struct("<I")
MAX_FRAME = 64 << 20  # bytes: a batch is at most a few thousand records; more means a corrupt stream

_HTTP_STATUS = re.compile(r"\b([1-5]\d\d)\b")
# Text that proves the request never reached the server: the connection was never made.
_NOT_SENT = (
    "Connection refused",
    "Errno 111",
    "NewConnectionError",
    "ConnectTimeout",
    "Name or service not known",
    "nodename nor servname",
    "No route to host",
    "Network is unreachable",
)
_ERROR_PATTERNS = (
    (("Connection refused", "Errno 111"), "ConnectionRefusedError"),
    (("reset by peer", "Errno 104", "ConnectionResetError"), "ConnectionResetError"),
    # requests' RemoteDisconnected; geventhttpclient's (FastHttpUser) HTTPConnectionClosed
    (("RemoteDisconnected", "without response", "Connection aborted", "HTTPConnectionClosed"), "RemoteDisconnected"),
    (("ConnectTimeout",), "ConnectTimeout"),
    (("ReadTimeout", "timed out", "TimeoutError"), "Timeout"),
    (("Broken pipe", "Errno 32"), "BrokenPipeError"),
)


def _chain(exc: BaseException) -> str:
    """The exception, its arguments and its causes as one string, for pattern matching."""
    parts, seen, current = [], 0, exc
    while current is not None and seen < 5:
        parts.append(f"{type(current).__name__}: {current!r}")
        seen += 1
        current = current.__cause__ or current.__context__  # type: ignore[assignment]
    return " | ".join(parts)


# geventhttpclient (FastHttpUser) raises a bare socket timeout whether the connection was never
# made or the answer never came; the frames it was raised through tell which.
_CONNECT_FRAMES = frozenset({"_create_socket", "_connect_socket", "create_connection"})


def _connecting(exc: BaseException) -> bool:
    """The failure happened while connecting: nothing of the request was sent."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        tb = current.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_name in _CONNECT_FRAMES:
                return True
            tb = tb.tb_next
        original = getattr(current, "original", None)  # geventhttpclient's RetriesExceeded
        seen += 1
        current = original if isinstance(original, BaseException) else current.__cause__ or current.__context__
    return False


def error_name(exc: BaseException | str | None) -> str | None:
    """A short, low-cardinality name for a failure (``HTTP 503``, ``ConnectionRefusedError``).

    Error names are interned on the timeline, so they must not carry ports, keys or URLs.
    """
    if exc is None:
        return None
    if isinstance(exc, str):
        return exc[:80]
    name = type(exc).__name__
    code = getattr(exc, "code", None)
    if name.endswith("BadStatusCode") and isinstance(code, int):  # FastHttpUser's non-2xx answer
        return f"HTTP {code}"
    text = _chain(exc)
    if name in ("HTTPError", "CatchResponseError"):
        found = _HTTP_STATUS.search(str(exc))
        if name == "HTTPError" and found:
            return f"HTTP {found.group(1)}"
        if name == "CatchResponseError":
            return str(exc)[:80] or name
    for needles, label in _ERROR_PATTERNS:
        if any(n in text for n in needles):
            return "ConnectTimeout" if label == "Timeout" and _connecting(exc) else label
    return name


def write_status_for_error(exc: BaseException | str) -> str:
    """``fail`` when the request provably never reached the server, else ``indeterminate``.

    A reset or a timeout after the request was sent may or may not have been applied:
    Jepsen's rule is to never count such a write as lost.
    """
    if isinstance(exc, str):
        return "fail" if any(n in exc for n in _NOT_SENT) else "indeterminate"
    text = _chain(exc)
    return "fail" if any(n in text for n in _NOT_SENT) or _connecting(exc) else "indeterminate"


def write_status_for_http(status: int) -> str:
    """2xx acknowledges; a gateway timeout or bad gateway may have been applied; the rest refused it."""
    if 200 <= status < 300:
        return "ok"
    if status in (502, 504):
        return "indeterminate"
    return "fail"


def encode_frame(batch: list[list[Any]]) -> bytes:
    """One batch of records as a frame of the events stream."""
    body = pickle.dumps(batch, protocol=5)
    return FRAME_HEADER.pack(len(body)) + body


class _DataOnly(pickle.Unpickler):
    """Builtin containers and scalars only: any reference to a class or function is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"the events stream names {module}.{name}; only plain data is accepted")


def decode_frame(body: bytes) -> list[Any]:
    """The records of one frame's body; :class:`ValueError` when it is not a list of plain data."""
    try:
        batch = _DataOnly(io.BytesIO(body)).load()
    except Exception as exc:  # a corrupt body can raise almost anything: EOFError, UnpicklingError...
        raise ValueError(f"corrupt frame: {type(exc).__name__}: {exc}") from None
    if not isinstance(batch, list):
        raise ValueError(f"corrupt frame: a {type(batch).__name__}, not a list of records")
    return batch


def request_record(start: float, latency: float, ok: bool, name: str, error: str | None) -> list[Any]:
    return [start, latency, 1 if ok else 0, name, error]


def write_record(key: str, start: float, ack: float | None, status: str) -> list[Any]:
    if status not in WRITE_STATUSES:
        raise ValueError(f"ledger: write status {status!r} is not one of {', '.join(WRITE_STATUSES)}")
    return [WRITE, key, start, ack, status]
