"""The userspace fault proxy: every toxic against a real echo server over loopback; port blackhole in a netns."""

from __future__ import annotations

import socket
import socketserver
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest

from pytest_resiliency import faults
from pytest_resiliency.errors import ConfigError, FaultError
from pytest_resiliency.experiment import Experiment
from pytest_resiliency.faults.netns import NetNamespace
from pytest_resiliency.faults.toxics import Proxy

ProxyFactory = Callable[..., Proxy]


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def px(proxy: ProxyFactory, echo: int) -> Proxy:
    return proxy(echo)


def _conn(p: Proxy, timeout: float = 2.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", p.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _rtt(sock: socket.socket, payload: bytes = b"ping") -> float:
    started = time.perf_counter()
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        got += chunk
    return time.perf_counter() - started


def test_latency_is_within_2ms_of_the_request_at_the_median(px: Proxy) -> None:
    with _conn(px) as sock:
        base = statistics.median(_rtt(sock) for _ in range(20))
        with faults.latency(px, "30ms"):
            added = [_rtt(sock) - base for _ in range(25)]
        after = statistics.median(_rtt(sock) for _ in range(10))
    assert abs(statistics.median(added) - 0.030) < 0.002, added
    assert after < 0.010  # reverted: back to loopback speed


def test_latency_upstream_with_jitter_spreads_around_the_mean(px: Proxy) -> None:
    with _conn(px) as sock, faults.latency(px, "40ms", jitter="20ms", stream="upstream"):
        samples = [_rtt(sock) for _ in range(30)]
    assert min(samples) >= 0.019 and max(samples) <= 0.075
    assert max(samples) - min(samples) > 0.010  # it does jitter
    assert statistics.mean(samples) == pytest.approx(0.040, abs=0.008)


def test_toxicity_zero_never_applies_and_one_always(px: Proxy) -> None:
    with faults.latency(px, 0.2, toxicity=0.0), _conn(px) as sock:
        assert _rtt(sock) < 0.1
    with faults.latency(px, "100ms", toxicity=1.0), _conn(px) as sock:
        assert _rtt(sock) >= 0.1


def test_bandwidth_limits_throughput(px: Proxy) -> None:
    payload = b"x" * 100_000
    with _conn(px, timeout=5) as sock, faults.bandwidth(px, "400KB/s"):  # 100 KB take 0.25 s
        took = _rtt(sock, payload)
    assert took == pytest.approx(0.25, abs=0.1)


def test_down_refuses_connections_and_comes_back_on_the_same_port(px: Proxy) -> None:
    with _conn(px) as before, faults.down(px):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", px.port), timeout=1)
        assert _closed(before)  # open connections are dropped too
    with _conn(px) as sock:
        assert _rtt(sock) < 0.1


def _closed(sock: socket.socket) -> bool:
    """The peer closed (FIN) or aborted (RST) the connection."""
    try:
        return sock.recv(10) == b""
    except ConnectionResetError:
        return True


def test_blackhole_accepts_and_drops(px: Proxy) -> None:
    with faults.blackhole(px), _conn(px, timeout=0.3) as sock:
        sock.sendall(b"hello?")
        with pytest.raises(TimeoutError):
            sock.recv(10)
    with _conn(px) as sock:
        assert _rtt(sock) < 0.1


def test_reset_peer_resets_the_connection(px: Proxy) -> None:
    with _conn(px) as sock, faults.reset_peer(px, after="50ms"):
        started = time.monotonic()
        with pytest.raises(ConnectionResetError):
            sock.recv(10)  # blocks until the toxic's timer resets the connection
        assert time.monotonic() - started == pytest.approx(0.05, abs=0.1)


def test_timeout_drops_data_then_closes(px: Proxy) -> None:
    with _conn(px) as sock, faults.timeout(px, "200ms"):
        started = time.monotonic()
        sock.sendall(b"anyone?")
        assert sock.recv(10) == b""  # no data, then a close
        assert time.monotonic() - started == pytest.approx(0.2, abs=0.1)


def test_slicer_delays_between_slices(px: Proxy) -> None:
    with _conn(px) as sock, faults.slicer(px, 100, 20, delay="10ms"):  # 10 ms between ~100-byte slices
        took = _rtt(sock, b"y" * 1000)
    assert 0.06 <= took <= 0.3  # about 10 slices, 9 gaps of 10 ms


def test_limit_data_closes_after_the_limit(px: Proxy) -> None:
    with _conn(px) as sock, faults.limit_data(px, 100):
        sock.sendall(b"z" * 300)
        got = b""
        while chunk := sock.recv(1000):
            got += chunk
    assert got == b"z" * 100


def test_toxics_are_recorded_on_the_timeline_with_their_parameters(px: Proxy, experiment: Experiment) -> None:
    with faults.latency(px, "25ms", jitter="5ms", stream="both") as fault:
        assert {t["stream"] for t in px.toxics()} == {"upstream", "downstream"}
    assert px.toxics() == []
    (record,) = experiment.timeline.faults
    assert record.kind == "latency" and record.reverted_at is not None
    assert record.params["latency"] == 0.025 and record.params["jitter"] == 0.005 and record.params["stream"] == "both"
    assert fault.describe().startswith("latency 25ms ±5ms both on proxy-")


def test_second_toxic_of_a_kind_on_a_proxy_is_refused(px: Proxy) -> None:
    with faults.latency(px, "10ms"), pytest.raises(FaultError, match="already has an active latency fault"):
        faults.latency(px, "20ms").inject()


def test_the_proxy_removes_an_expired_toxic_by_itself(px: Proxy) -> None:
    spec = {"name": "t", "type": "latency", "attributes": {"latency": 500}, "expires_at": time.time() + 0.2}
    px.call("add", toxic=spec)
    assert [t["name"] for t in px.toxics()] == ["t"]
    deadline = time.monotonic() + 3
    while px.toxics() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert px.toxics() == []


def test_the_proxy_dies_with_its_pytest(echo: int) -> None:
    owner = subprocess.Popen(
        [
            sys.executable, "-c",
            "import time; from pytest_resiliency.faults.toxics import Proxy\n"
            f"p = Proxy({echo}); p.call('add', toxic={{'name': 't', 'type': 'blackhole'}})\n"
            "print(p.pid, flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert owner.stdout is not None
    proxy_pid = int(owner.stdout.readline())
    owner.stdout.close()
    owner.kill()
    owner.wait()
    _, alive = psutil.wait_procs([psutil.Process(proxy_pid)], timeout=5)
    assert not alive, "the proxy (and its toxic) outlived the process that owned it"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: faults.latency(p, -5), r"latency=-5 must be a finite duration >= 0"),
        (lambda p: faults.latency(p, "10ms", jitter="20ms"), r"jitter='20ms' must not exceed latency='10ms'"),
        (lambda p: faults.latency(p, "1 ms"), r"latency='1 ms' is not a duration; use a number of seconds"),
        (lambda p: faults.latency(p, 0.01, stream="sideways"), r"stream='sideways' is not accepted; use one of up"),  # type: ignore[arg-type]
        (lambda p: faults.latency(p, 0.01, toxicity=2), r"toxicity=2 must be a probability between 0 and 1"),
        (lambda p: faults.bandwidth(p, 0), r"rate=0 would stop all data"),
        (lambda p: faults.bandwidth(p, "64KB"), r"rate='64KB' is not a rate; use a number of bytes per second"),
        (lambda p: faults.slicer(p, 10, 10), r"size_variation=10 must be below average_size=10"),
        (lambda p: faults.limit_data(p, -1), r"bytes=-1 must be a size >= 0"),
        (lambda p: faults.toxic(p, "gremlins"), r"type='gremlins' is not a toxic; accepted: latency, bandwidth"),
        (lambda p: faults.latency(12345, 0.01), r"needs a Proxy"),  # type: ignore[arg-type]
        (lambda p: faults.latency(p, 0.01, max_duration="-1s"), r"max_duration='-1s' is not a duration"),
        (lambda p: faults.blackhole(8080), r"netns= is required for a port"),  # type: ignore[call-overload]
        (lambda p: faults.blackhole(70000, netns="x"), r"port=70000 must be a TCP port number between 1 and 65535"),
        (lambda p: faults.blackhole("8080", netns="x"), r"target='8080' is not accepted; use a Proxy"),  # type: ignore[call-overload]
        (lambda p: faults.port_blackhole(8080), r"netns= is required for a port"),
    ],
)
def test_bad_toxic_input_is_a_clear_error(px: Proxy, make: Callable[[Proxy], Any], message: str) -> None:
    with pytest.raises((ConfigError, FaultError), match=message):
        make(px).inject()


@pytest.mark.parametrize(
    ("make", "old", "new"),
    [
        (lambda p: faults.latency(p, 0.1, jitter_ms=10), "jitter_ms", "jitter"),  # type: ignore[arg-type]
        (lambda p: faults.reset_peer(p, timeout_ms=50), "timeout_ms", "after"),  # type: ignore[arg-type]
        (lambda p: faults.timeout(p, timeout=200), "timeout", "after"),  # type: ignore[arg-type]
        (lambda p: faults.slicer(p, 100, delay_us=10), "delay_us", "delay"),  # type: ignore[arg-type]
        (lambda p: faults.bandwidth(p, "1MB/s", rate_kbps=400), "rate_kbps", "rate"),  # type: ignore[arg-type]
    ],
)
def test_old_unit_keywords_are_refused_naming_the_new_one(
    px: Proxy, make: Callable[[Proxy], Any], old: str, new: str
) -> None:
    """The old bare-ms/µs/KB/s keyword names fail loudly instead of meaning seconds or bytes now."""
    with pytest.raises(ConfigError, match=rf"{old}=\S+ is no longer accepted; use {new}= with a duration"):
        make(px)


def test_an_old_name_for_the_main_argument_is_a_type_error_naming_the_new_one(px: Proxy) -> None:
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'latency'"):
        faults.latency(px, latency_ms=100)  # type: ignore[call-arg, arg-type]


def test_an_unknown_keyword_is_a_type_error(px: Proxy) -> None:
    with pytest.raises(TypeError, match=r"faults.latency\(\) got an unexpected keyword argument 'nonsense'"):
        faults.latency(px, 0.1, nonsense=1)  # type: ignore[arg-type]


def test_bare_numbers_are_seconds_and_bytes_like_everywhere_else(px: Proxy) -> None:
    assert faults.latency(px, 0.25).attributes == {"latency": 0.25, "jitter": 0.0}
    assert faults.latency(px, "250ms").attributes == {"latency": 0.25, "jitter": 0.0}
    assert faults.bandwidth(px, "2KB/s").attributes == {"rate": 2000.0}
    assert faults.bandwidth(px, 2000).attributes == {"rate": 2000.0}
    assert faults.slicer(px, "1KB", delay="2ms").attributes == {"average_size": 1000.0, "size_variation": 0.0,
                                                                 "delay": 0.002}  # fmt: skip
    assert faults.toxic(px, "latency", {"latency": "5ms"}).attributes == {"latency": 0.005, "jitter": 0.0}
    assert px.latency("5ms").attributes == faults.latency(px, "5ms").attributes


def test_a_proxy_port_in_use_is_a_clear_error(proxy: ProxyFactory, echo: int) -> None:
    with pytest.raises(FaultError, match=rf"proxy listen_port {echo} is already in use on 127.0.0.1"):
        proxy(echo, listen_port=echo)


def test_port_blackhole_in_a_namespace(netns: NetNamespace) -> None:
    server = subprocess.Popen(
        [*netns.exec_prefix(), sys.executable, "-c", _LISTENER], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "listening"
        netns.connect(8080)
        with faults.blackhole(8080, netns=netns) as fault:
            assert fault.table in netns.nft_tables()
            with pytest.raises(TimeoutError):
                netns.connect(8080, timeout=0.3)
        assert not [t for t in netns.nft_tables() if t.startswith("resiliency_")]
        netns.connect(8080)
    finally:
        server.kill()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()


_LISTENER = """
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8080)); s.listen(64); print("listening", flush=True)
while True:
    c, _ = s.accept(); c.close()
"""
