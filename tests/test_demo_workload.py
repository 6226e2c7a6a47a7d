"""The demo workload itself: durability modes survive (or not) a SIGKILL as documented,
the ledger dependency gates writes, the replica trails by its lag and fails over, and bad
input gets a clear answer. Real processes on loopback; each test uses its own ports."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from resiliency_tests.demo.harness import DemoProcess, command, present, request, wait_healthy


def _write(url: str, keys: list[str]) -> None:
    for key in keys:
        status, body = request(url, "POST", "/orders", {"key": key, "amount": 2})
        assert status == 201, body


def _until(predicate: object, timeout: float = 5.0) -> None:
    """Poll a condition (bounded), for state that other processes change."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout}s")


def test_orders_api_convention(tmp_path: Path) -> None:
    with DemoProcess("orders", "--durability", "memory") as orders:
        status, body = request(orders.url, "POST", "/orders", {"key": "k1", "amount": 5})
        assert (status, body["key"], body["amount"]) == (201, "k1", 5)
        assert request(orders.url, "POST", "/orders", {"key": "k1"})[0] == 200  # idempotent retry
        assert request(orders.url, "GET", "/orders/k1")[1]["amount"] == 5
        assert request(orders.url, "GET", "/orders/nope")[0] == 404
        status, generated = request(orders.url, "POST", "/orders", {"amount": 1})
        assert status == 201 and len(generated["key"]) == 32
        status, listing = request(orders.url, "GET", "/orders?limit=1")
        assert listing == {"count": 2, "keys": [generated["key"]]}
        assert present(orders.url, ["k1", "nope"]) == {"k1"}
        health = wait_healthy(orders.url)
        assert (health["role"], health["durability"], health["orders"]) == ("primary", "memory", 2)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "text"),
    [
        ("POST", "/orders", "not json", 400, "not JSON"),
        ("POST", "/orders", ["a"], 400, "JSON object"),
        ("POST", "/orders", {"key": "a/b"}, 400, "without '/'"),
        ("POST", "/orders", {"key": 7}, 400, "non-empty string"),
        ("GET", "/orders?limit=x", None, 400, "whole number"),
        ("POST", "/orders/_lookup", {"keys": "a"}, 400, '{"keys"'),
        ("DELETE", "/orders", None, 405, "not allowed"),
        ("GET", "/nowhere", None, 404, "no route"),
    ],
)
def test_bad_requests_get_clear_errors(method: str, path: str, body: object, status: int, text: str) -> None:
    with DemoProcess("orders", "--durability", "memory") as orders:
        if body == "not json":
            conn = socket.create_connection(("127.0.0.1", orders.port))
            conn.sendall(b"POST /orders HTTP/1.1\r\nContent-Length: 8\r\n\r\nnot json")
            answer = conn.recv(4096).decode()
            conn.close()
            assert f" {status} " in answer.splitlines()[0] and text in answer
            return
        got, answer = request(orders.url, method, path, body)
        assert got == status and text in answer["error"]


def test_keep_alive_pipelined_and_malformed() -> None:
    with DemoProcess("orders", "--durability", "memory") as orders:
        conn = socket.create_connection(("127.0.0.1", orders.port), timeout=2)
        body = b'{"key":"p1"}'
        conn.sendall(b"POST /orders HTTP/1.1\r\nContent-Length: 12\r\n\r\n" + body + b"GET /orders/p1 HTTP/1.1\r\n\r\n")
        data = b""
        while data.count(b"HTTP/1.1 ") < 2:
            data += conn.recv(4096)
        assert data.startswith(b"HTTP/1.1 201") and b"HTTP/1.1 200" in data
        conn.sendall(b"BROKEN\r\n\r\n")
        assert conn.recv(4096).startswith(b"HTTP/1.1 400")
        conn.close()


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--durability", "fsync"], "needs a data directory"),
        (["--durability", "paper"], "invalid choice: 'paper'"),
        (["--snapshot-interval", "soon"], "is not a duration"),
        (["--port", "70000"], "between 0 and 65535"),
        (["--ledger", "nowhere"], "is not host:port"),
    ],
)
def test_bad_command_line_is_a_clear_error(args: list[str], text: str) -> None:
    done = subprocess.run(command("orders", *args), capture_output=True, text=True, timeout=20)
    assert done.returncode == 2 and text in done.stderr, done.stderr


def test_fsync_loses_nothing_on_sigkill_and_cuts_a_torn_tail(tmp_path: Path) -> None:
    orders = DemoProcess("orders", "--durability", "fsync", "--data-dir", str(tmp_path))
    with orders:
        keys = [f"f{i}" for i in range(200)]
        _write(orders.url, keys)
        orders.kill()
        with (tmp_path / "orders.log").open("ab") as log:
            log.write(b'{"key":"torn","bo')  # a crash in the middle of a record
        orders.start()
        health = wait_healthy(orders.url)
        assert health["recovered"] == 200
        assert present(orders.url, [*keys, "torn"]) == set(keys)
        _write(orders.url, ["after"])
        orders.kill()
        orders.start()
        assert present(orders.url, ["f0", "after"]) == {"f0", "after"}


def test_snapshot_loses_what_came_after_the_last_snapshot(tmp_path: Path) -> None:
    orders = DemoProcess(
        "orders", "--durability", "snapshot", "--snapshot-interval", "300ms", "--data-dir", str(tmp_path)
    )
    with orders:
        _write(orders.url, ["s1", "s2"])
        written = time.time()
        _until(lambda: (wait_healthy(orders.url)["last_snapshot_at"] or 0) > written)
        health = wait_healthy(orders.url)
        assert 0 < health["next_snapshot_at"] - health["now"] <= 0.35
        # write right after a snapshot and kill before the next one can include it
        _until(lambda: (wait_healthy(orders.url)["last_snapshot_at"] or 0) > time.time() - 0.05)
        _write(orders.url, ["s3"])
        orders.kill()
        orders.start()
        assert present(orders.url, ["s1", "s2", "s3"]) == {"s1", "s2"}
        # a clean shutdown (SIGTERM) writes a last snapshot: nothing lost
        _write(orders.url, ["s4"])
        orders.stop()
        orders.start()
        assert present(orders.url, ["s1", "s4"]) == {"s1", "s4"}


def test_memory_loses_everything_on_restart() -> None:
    orders = DemoProcess("orders", "--durability", "memory")
    with orders:
        _write(orders.url, ["m1"])
        orders.kill()
        orders.start()
        assert present(orders.url, ["m1"]) == set()


def test_ledger_dependency_gates_writes_but_not_reads() -> None:
    ledger = DemoProcess("ledger")
    with DemoProcess("orders", "--durability", "memory", "--ledger", f"127.0.0.1:{ledger.port}") as orders:
        status, body = request(orders.url, "POST", "/orders", {"key": "l1"})
        assert status == 503 and "ledger unavailable" in body["error"]  # refused fast, not acknowledged
        assert request(orders.url, "GET", "/orders/l1")[0] == 404
        with ledger:
            _write(orders.url, ["l1", "l2"])
            assert request(ledger.url, "GET", "/entries")[1] == {"count": 2}
        assert request(orders.url, "POST", "/orders", {"key": "l3"})[0] == 503
        assert request(orders.url, "GET", "/orders/l1")[0] == 200  # reads keep working: degraded
        assert wait_healthy(orders.url)["ledger_failures"] == 2


def _fill(fd: int) -> None:
    for _ in range(1000):  # 4 MiB at most: far more than the 256 KiB disk
        os.write(fd, b"\0" * 4096)


@pytest.fixture
def small_disk(tmpfs: Callable[[str], Path]) -> Path:
    """A 256 KiB tmpfs the test owns, so filling it touches nothing else (needs root)."""
    return tmpfs("256k")


def test_disk_full_refuses_writes_cleanly_and_recovers(small_disk: Path) -> None:
    data = small_disk / "data"
    orders = DemoProcess("orders", "--durability", "fsync", "--data-dir", str(data))
    with orders:
        _write(orders.url, ["d1"])
        filler = small_disk / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        try:
            with pytest.raises(OSError, match="No space"):
                _fill(fd)
        finally:
            os.close(fd)
        status, body = request(orders.url, "POST", "/orders", {"key": "d2", "note": "x" * 5000})
        assert status == 507 and "No space" in body["error"]
        assert request(orders.url, "GET", "/orders/d2")[0] == 404  # never visible, never acknowledged
        filler.unlink()
        _write(orders.url, ["d3"])
        orders.kill()
        orders.start()
        assert present(orders.url, ["d1", "d2", "d3"]) == {"d1", "d3"}


def test_replica_trails_by_its_lag_and_front_fails_over(tmp_path: Path) -> None:
    primary = DemoProcess("orders", "--durability", "memory")
    replica = DemoProcess("orders", "--durability", "memory", "--replication-lag", "400ms")
    with primary:
        replica.args += ["--replica-of", f"127.0.0.1:{primary.port}"]
        with replica:
            front = DemoProcess(
                "front",
                "--primary",
                f"127.0.0.1:{primary.port}",
                "--replica",
                f"127.0.0.1:{replica.port}",
                "--admin-port-file",
                str(tmp_path / "admin"),
            )
            with front:
                _write(front.url, ["r1"])
                acked = time.time()
                assert present(replica.url, ["r1"]) == set()  # not yet: it trails by 400 ms
                assert request(replica.url, "POST", "/orders", {"key": "x"})[0] == 503  # read-only
                _until(lambda: present(replica.url, ["r1"]) == {"r1"})
                assert time.time() - acked >= 0.35
                _write(front.url, ["r2"])
                primary.kill()  # r2 is acknowledged and not yet replicated: the failover loses it
                admin = f"http://127.0.0.1:{(tmp_path / 'admin').read_text()}"
                _until(lambda: request(admin, "GET", "/status")[1]["failovers"])
                failover = request(admin, "GET", "/status")[1]["failovers"][0]
                assert failover["promoted_at"] - failover["detected_at"] < 2
                _write(front.url, ["r3"])
                assert wait_healthy(front.url)["role"] == "primary"
                assert present(front.url, ["r1", "r2", "r3"]) == {"r1", "r3"}
