"""Error classification of real client errors: refused (``fail``) versus unknown (``indeterminate``).

The errors come from the real client libraries talking to real sockets: a closed port, a
server that accepts and never answers, one that reads the request and hangs up.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from pytest_resiliency.load import classifiers, stores
from pytest_resiliency.targets.service import free_port


@contextlib.contextmanager
def _server(behaviour: str) -> Iterator[int]:
    """A TCP server that ``hangs`` (accepts, never answers) or ``drops`` (reads, then closes)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()
    conns: list[socket.socket] = []

    def run() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            conns.append(conn)
            if behaviour == "drops":
                with contextlib.suppress(OSError):
                    conn.settimeout(2)
                    conn.recv(65536)
                conn.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in conns:
            conn.close()
        listener.close()


def _error(call: Any) -> BaseException:
    try:
        call()
    except Exception as exc:
        return exc
    raise AssertionError("the call did not fail")


def test_redis_refused_connection_is_fail() -> None:
    pytest.importorskip("redis", reason="redis-py is not installed: pip install redis")
    store = stores.RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    assert classifiers.redis(_error(lambda: store.put("k"))) == "fail"


@pytest.mark.parametrize("behaviour", ["hangs", "drops"])
def test_redis_timeout_or_drop_after_sending_is_indeterminate(behaviour: str) -> None:
    pytest.importorskip("redis", reason="redis-py is not installed: pip install redis")
    with _server(behaviour) as port:
        store = stores.RedisStore(f"redis://127.0.0.1:{port}/0", timeout=0.3)
        exc = _error(lambda: store.put("k"))
        store.close()
    assert classifiers.redis(exc) == "indeterminate", repr(exc)


def test_redis_error_replies_are_refusals() -> None:
    pytest.importorskip("redis", reason="redis-py is not installed: pip install redis")
    from redis.exceptions import BusyLoadingError, ReadOnlyError, ResponseError

    # What redis-py's parser makes of the server's "-LOADING" / "-READONLY" / "-MISCONF" replies.
    for exc in (
        BusyLoadingError("Redis is loading the dataset in memory"),
        ReadOnlyError("You can't write against a read only replica."),
        ResponseError("MISCONF Redis is configured to save RDB snapshots"),
    ):
        assert classifiers.redis(exc) == "fail", exc
    assert classifiers.label(BusyLoadingError("loading")) == "BusyLoadingError"


def test_psycopg_refused_and_dropped_during_connect_are_fail() -> None:
    psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed: pip install 'psycopg[binary]'")
    refused = _error(lambda: psycopg.connect(f"postgresql://x@127.0.0.1:{free_port()}/db", connect_timeout=2))
    assert classifiers.psycopg(refused) == "fail"
    with _server("drops") as port:
        dropped = _error(lambda: psycopg.connect(f"postgresql://x@127.0.0.1:{port}/db", connect_timeout=2))
    assert classifiers.psycopg(dropped) == "fail", repr(dropped)  # the statement was never sent


@pytest.mark.parametrize(
    ("sqlstate", "status"),
    [
        ("57P03", "fail"),  # the database system is starting up
        ("25006", "fail"),  # read-only transaction (a standby)
        ("23505", "fail"),  # unique violation: rejected
        ("57014", "fail"),  # statement timeout: rolled back
        ("57P01", "indeterminate"),  # terminating connection due to administrator command, mid-statement
        ("08006", "indeterminate"),  # connection failure mid-statement
        ("XX000", "indeterminate"),  # internal error: unknown
    ],
)
def test_psycopg_sqlstates(sqlstate: str, status: str) -> None:
    psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed: pip install 'psycopg[binary]'")
    exc = psycopg.errors.lookup(sqlstate)("message")
    assert classifiers.psycopg(exc) == status


def test_psycopg_connection_lost_mid_statement_is_indeterminate() -> None:
    psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed: pip install 'psycopg[binary]'")
    exc = psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly")
    assert classifiers.psycopg(exc) == "indeterminate"


class _Gateway(BaseHTTPRequestHandler):
    answer: tuple[int, dict[str, Any]] = (200, {})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, body = self.answer
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (503, "etcdserver: no leader", "fail"),
        (503, "raft proposal dropped", "fail"),
        (429, "etcdserver: too many requests", "fail"),
        (503, "etcdserver: request timed out", "indeterminate"),
        (503, "etcdserver: request timed out, possibly due to previous leader failure", "indeterminate"),
        (503, "etcdserver: leader changed", "indeterminate"),
        (400, "etcdserver: key is not provided", "fail"),
        (500, "something new", "indeterminate"),
    ],
)
def test_etcd_gateway_answers(status: int, message: str, expected: str) -> None:
    """A stand-in for etcd's JSON gateway (it answers these bodies); the client parses the real HTTP."""
    handler = type("H", (_Gateway,), {"answer": (status, {"error": message, "code": 14, "message": message})})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        store = stores.EtcdStore(f"etcd://127.0.0.1:{server.server_address[1]}")
        exc = _error(lambda: store.put("k"))
    finally:
        server.shutdown()
        server.server_close()
    assert isinstance(exc, classifiers.EtcdError) and exc.message == message
    assert classifiers.etcd(exc) == expected
    assert classifiers.label(exc) == message.split(",")[0]


def test_etcd_fails_over_past_a_refused_member_and_is_fail_when_all_refuse() -> None:
    handler = type("H", (_Gateway,), {"answer": (200, {"header": {}})})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        store = stores.EtcdStore(f"etcd://127.0.0.1:{free_port()},127.0.0.1:{server.server_address[1]}")
        store.put("k")  # the first member refuses: nothing sent, the second takes it
    finally:
        server.shutdown()
        server.server_close()
    dead = stores.EtcdStore(f"etcd://127.0.0.1:{free_port()},127.0.0.1:{free_port()}")
    assert classifiers.etcd(_error(lambda: dead.put("k"))) == "fail"
    with _server("hangs") as port:
        slow = stores.EtcdStore(f"etcd://127.0.0.1:{port}", timeout=0.3)
        assert classifiers.etcd(_error(lambda: slow.put("k"))) == "indeterminate"


def test_unknown_classifier_and_bad_store_urls_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="classify='x' is not a known classifier"):
        classifiers.get("x")
    with pytest.raises(stores.StoreError, match="scheme 'mysql' is not one of redis://, postgresql://, etcd://"):
        stores.connect("mysql://127.0.0.1/db")
    with pytest.raises(stores.StoreError, match="must look like etcd://HOST:PORT"):
        stores.EtcdStore("http://127.0.0.1:2379")
