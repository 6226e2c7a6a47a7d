"""Distributed load with real remote workers: load hosts are network namespaces this test creates.

Each load host is a namespace with its own network stack, joined to this host by a veth
pair with private addresses; the master and the system under test listen on the host end
of the first pair, so workers reach them exactly as they would over a LAN, and the traffic
never leaves namespaces the test made. Workers are started with the documented command
(``python -m pytest_resiliency.load.worker``) and fetch their locustfiles from the master.
Without root or iproute2 these tests skip, saying so; the ones that need no namespace
(loopback workers, bad input) always run.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from load_hosts import LoadHost, NamespaceError, TimedOrders, make_hosts, unavailable
from load_servers import OrdersServer

from pytest_resiliency.experiment import Experiment
from pytest_resiliency.load.records import CLOCK_OFFSET_ENV
from pytest_resiliency.load.run import LoadRun
from pytest_resiliency.load.spec import LoadError, make_spec

pytestmark = pytest.mark.slow

DETECT_WITHIN = 8.0  # seconds from a kill to the error: missing_after (3 s) + settle (1.2 s) + slack


@pytest.fixture
def load_hosts() -> Iterator[Callable[[int], list[LoadHost]]]:
    """Factory of ``n`` load hosts; every namespace, veth and process is removed at the end."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    made: list[LoadHost] = []

    def make(n: int) -> list[LoadHost]:
        try:
            return make_hosts(n, made)
        except NamespaceError as exc:
            if "netns add" in str(exc):
                pytest.skip(f"cannot create a network namespace: {exc}")
            raise

    yield make
    for host in made:
        host.remove()


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Callable[..., tuple[LoadRun, Experiment]]]:
    """Start a load straight through the controller, with its own experiment (so an abort is inspectable)."""
    started: list[LoadRun] = []

    def start(url: str, **options: Any) -> tuple[LoadRun, Experiment]:
        options.setdefault("max_clock_skew", 1.0)
        experiment = Experiment("test_load_distributed")
        workdir = Path(tempfile.mkdtemp(prefix="load", dir=tmp_path))
        traffic = LoadRun(make_spec(url, **options), experiment, workdir, start_timeout=30)
        started.append(traffic)
        return traffic.start(), experiment

    yield start
    for traffic in started:
        traffic.stop(grace=5)


def _marks(experiment: Experiment, kind: str) -> list[Any]:
    return [m for m in experiment.timeline.snapshot().marks if m.kind == kind]


def _wait(predicate: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _died_within(traffic: LoadRun, seconds: float) -> float:
    """Seconds until the load reported itself dead (or ``inf``)."""
    began = time.monotonic()
    traffic.ingest.wait(lambda: traffic.died is not None, seconds)
    return time.monotonic() - began if traffic.died is not None else float("inf")


# -- with load hosts in network namespaces ---------------------------------------------


def test_remote_workers_join_from_their_own_hosts(
    load_hosts: Callable[[int], list[LoadHost]], run: Any, tmp_path: Path
) -> None:
    a, b = load_hosts(2)
    server = TimedOrders(a.host_ip)
    try:
        traffic, experiment = run(
            server.url, users=4, rate=80, remote_workers=["load-a", "load-b"], master_bind_host=a.host_ip
        )
        assert traffic.master_port == 5557, "remote workers get locust's fixed default port"
        assert traffic.worker_command(name="load-a") == (
            f"python3 -m pytest_resiliency.load.worker --master-host {a.host_ip} --master-port 5557 --name load-a"
        )
        for host, name in ((a, "load-a"), (b, "load-b")):
            host.worker(a.host_ip, 5557, name, tmp_path / f"{name}.log")
        traffic.wait_steady(timeout="30s", successes=40)
        assert set(traffic.joined) == {"load-a", "load-b"}
        assert all(not d["local"] for d in traffic.joined.values())
        assert {m.name for m in _marks(experiment, "worker-joined")} == {"load-a", "load-b"}
        clocks = {m.name: m.detail for m in _marks(experiment, "clock")}
        assert set(clocks) == {"load-a", "load-b"}
        for detail in clocks.values():  # one kernel clock: the measured offset is within its uncertainty
            assert abs(detail["offset_s"]) <= detail["uncertainty_s"] + 0.001
        assert 0 < traffic.clock_uncertainty < 0.05
        assert _wait(lambda: traffic.ingest.writes["ok"] >= 30, 15)
        traffic.stop()
        report = traffic.report()["workers"]
        assert report["master"] == f"{a.host_ip}:5557" and report["lost"] == [] and report["refused"] == []
        ledger = experiment.verify_writes(traffic.read_back)
        assert ledger.lost == 0 and ledger.acknowledged >= 30
        assert _wait(lambda: a.pids() == [] and b.pids() == [], 10), "the workers quit with the master"
    finally:
        traffic.stop()
        server.close()


def test_killing_one_worker_is_an_error_naming_it_within_seconds(
    load_hosts: Callable[[int], list[LoadHost]], run: Any, tmp_path: Path
) -> None:
    a, b = load_hosts(2)
    server = OrdersServer(a.host_ip)
    try:
        traffic, experiment = run(
            server.url, users=4, rate=80, remote_workers=["load-a", "load-b"], master_bind_host=a.host_ip
        )
        a.worker(a.host_ip, traffic.master_port, "load-a", tmp_path / "a.log")
        b.worker(a.host_ip, traffic.master_port, "load-b", tmp_path / "b.log")
        traffic.wait_steady(timeout="30s", successes=20)
        b.kill()
        elapsed = _died_within(traffic, 20)
        print(f"one worker killed: reported after {elapsed:.2f}s")
        assert elapsed < DETECT_WITHIN
        assert traffic.died is not None and "'load-b' went missing" in traffic.died
        assert "1 of 2 workers left (load-a)" in traffic.died and "load-a'" not in traffic.died
        assert experiment.aborted == traffic.died, "the experiment is aborted: the test is an ERROR"
        assert [m.name for m in _marks(experiment, "worker-missing")] == ["load-b"]
        with pytest.raises(LoadError, match="'load-b' went missing"):
            traffic.wait_recovered(timeout="30s")
    finally:
        traffic.stop()
        server.close()


def test_killing_every_worker_is_one_error_naming_all(
    load_hosts: Callable[[int], list[LoadHost]], run: Any, tmp_path: Path
) -> None:
    a, b = load_hosts(2)
    server = OrdersServer(a.host_ip)
    try:
        traffic, experiment = run(
            server.url, users=4, rate=80, remote_workers=["load-a", "load-b"], master_bind_host=a.host_ip
        )
        a.worker(a.host_ip, traffic.master_port, "load-a", tmp_path / "a.log")
        b.worker(a.host_ip, traffic.master_port, "load-b", tmp_path / "b.log")
        traffic.wait_steady(timeout="30s", successes=20)
        a.kill()
        b.kill()
        elapsed = _died_within(traffic, 20)
        print(f"every worker killed: reported after {elapsed:.2f}s")
        assert elapsed < DETECT_WITHIN
        assert traffic.died is not None and traffic.died.startswith("load: every worker is gone")
        assert "'load-a' went missing" in traffic.died and "'load-b' went missing" in traffic.died
        assert experiment.aborted == traffic.died
    finally:
        traffic.stop()
        server.close()


def test_a_worker_killed_just_before_the_end_is_still_reported(
    load_hosts: Callable[[int], list[LoadHost]], run: Any, tmp_path: Path
) -> None:
    (a,) = load_hosts(1)
    server = OrdersServer(a.host_ip)
    try:
        traffic, experiment = run(server.url, users=2, rate=40, workers=1, remote_workers=1, master_bind_host=a.host_ip)
        a.worker(a.host_ip, traffic.master_port, "load-a", tmp_path / "a.log")
        traffic.wait_steady(timeout="30s", successes=10)
        a.kill()
        traffic.stop()  # at once: far less than missing_after of silence
    finally:
        traffic.stop()
        server.close()
    assert [w["name"] for w in traffic.lost] == ["load-a"], "the master's roll call found it gone"
    assert traffic.died is not None and "'load-a' went missing" in traffic.died and "(local-0)" in traffic.died
    assert experiment.aborted == traffic.died
    assert [m.name for m in _marks(experiment, "worker-missing")] == ["load-a"]


def test_a_lost_worker_with_continue_reports_the_rate_loss(
    load_hosts: Callable[[int], list[LoadHost]], run: Any, tmp_path: Path
) -> None:
    a, b = load_hosts(2)
    server = OrdersServer(a.host_ip)
    try:
        traffic, experiment = run(
            server.url,
            users=4,
            rate=100,
            remote_workers=2,
            master_bind_host=a.host_ip,
            on_worker_loss="continue",
            missing_after="1.5s",
        )
        a.worker(a.host_ip, traffic.master_port, "load-a", tmp_path / "a.log")
        b.worker(a.host_ip, traffic.master_port, "load-b", tmp_path / "b.log")
        traffic.wait_steady(timeout="30s", successes=20)
        assert _wait(lambda: (traffic.ingest.last_start or 0) - (traffic.ingest.first_start or 0) > 2.5, 20)
        b.kill()
        assert _wait(lambda: bool(traffic.lost), 20)
        lost_at = traffic.lost[0]["at"]
        assert _wait(lambda: (traffic.ingest.last_start or 0) > lost_at + 2, 10), "the rest keeps running"
        assert traffic.died is None and experiment.aborted is None
        assert traffic.stats()["lost_workers"] == ["load-b"]
    finally:
        traffic.stop()
        server.close()
    (lost,) = traffic.report()["workers"]["lost"]
    assert lost["name"] == "load-b" and lost["users"] == 2
    assert lost["rps_before"] > 50 and lost["rps_after"] < 0.75 * lost["rps_before"]  # half the users are gone


def test_a_worker_that_never_joins_is_named_when_the_wait_ends(
    load_hosts: Callable[[int], list[LoadHost]], run: Any, tmp_path: Path
) -> None:
    (a,) = load_hosts(1)
    server = OrdersServer(a.host_ip)
    try:
        began = time.monotonic()
        traffic, _ = run(
            server.url,
            users=2,
            remote_workers=["load-a", "load-b"],
            master_bind_host=a.host_ip,
            master_port=0,
            workers_timeout="8s",  # a worker starts in 2-3 s on a busy machine
        )
        a.worker(a.host_ip, traffic.master_port, "load-a", tmp_path / "a.log")
        with pytest.raises(LoadError) as info:
            traffic.wait_steady(timeout="60s")
        assert time.monotonic() - began < 8 + 2
    finally:
        traffic.stop()
        server.close()
    message = str(info.value)
    assert message.startswith("load: 1 of 2 workers joined within 8s")
    assert "joined: load-a (" in message and "not joined: 'load-b'" in message
    assert f"must reach {a.host_ip}:{traffic.master_port} over TCP" in message


def test_a_worker_clock_offset_is_measured_and_corrected(
    load_hosts: Callable[[int], list[LoadHost]], run: Any, tmp_path: Path
) -> None:
    (a,) = load_hosts(1)
    server = TimedOrders(a.host_ip)
    offset = 0.4  # within the default 1 s limit
    try:
        traffic, experiment = run(
            server.url, users=2, rate=60, writes=0.5, remote_workers=1, master_bind_host=a.host_ip, master_port=0
        )
        a.worker(a.host_ip, traffic.master_port, "load-a", tmp_path / "a.log", **{CLOCK_OFFSET_ENV: str(offset)})
        traffic.wait_steady(timeout="30s", successes=20)
        assert _wait(lambda: traffic.ingest.writes["ok"] >= 30, 15)
    finally:
        traffic.stop()
        server.close()
    (clock, *_) = _marks(experiment, "clock")
    uncertainty = traffic.clock_uncertainty
    print(f"injected {offset}s: measured {clock.detail['offset_s']:.6f}s ±{clock.detail['uncertainty_s'] * 1000:.2f}ms")
    assert clock.name == "load-a" and abs(clock.detail["offset_s"] - offset) <= clock.detail["uncertainty_s"] + 0.002
    assert 0 < uncertainty < 0.05
    evidence = experiment.timeline.snapshot()
    checked = 0
    for key, start, ack, status in zip(
        evidence.write_keys, evidence.write_start, evidence.write_ack, evidence.write_status, strict=True
    ):
        if key in server.received and ack == ack:  # acknowledged (ack is not NaN)
            # The server's own clock dates the write after the worker's corrected send, and
            # before its ack; the ledger's ack is ``start`` + locust's elapsed time, which begins
            # a little after ``start`` (a few ms on a busy machine), hence the slack on that side.
            # Uncorrected, every write would be 0.4 s off one bound.
            assert start - uncertainty - 0.001 <= server.received[key] <= ack + uncertainty + 0.05, status
            checked += 1
    assert checked >= 30
    print(
        f"{checked} acknowledged writes checked against the server's clock; max uncertainty {uncertainty * 1000:.2f}ms"
    )


@pytest.mark.parametrize("offset", [5.0, -3.0])
def test_a_worker_clock_beyond_the_limit_is_refused(
    load_hosts: Callable[[int], list[LoadHost]], run: Any, tmp_path: Path, offset: float
) -> None:
    (a,) = load_hosts(1)
    server = OrdersServer(a.host_ip)
    try:
        traffic, experiment = run(server.url, users=2, remote_workers=1, master_bind_host=a.host_ip, master_port=0)
        a.worker(a.host_ip, traffic.master_port, "load-a", tmp_path / "a.log", **{CLOCK_OFFSET_ENV: str(offset)})
        assert _died_within(traffic, 20) < DETECT_WITHIN
    finally:
        traffic.stop()
        server.close()
    way = "ahead of" if offset > 0 else "behind"
    assert traffic.died is not None
    found = re.search(
        r"load: worker 'load-a' was refused: it has a clock ([\d.]+)s (.+?) the pytest host \(±([\d.]+) ms\)",
        traffic.died,
    )
    assert found, traffic.died
    assert found.group(2) == way and abs(float(found.group(1)) - abs(offset)) <= float(found.group(3)) / 1000 + 0.001
    assert "beyond max_clock_skew=1s" in traffic.died and "--resiliency-load-max-clock-skew" in traffic.died
    assert experiment.aborted == traffic.died
    assert traffic.ingest.requests == 0, "no timestamp of an untrusted clock reaches the timeline"


def test_a_worker_killed_under_pytest_is_a_test_error_naming_it(
    load_hosts: Callable[[int], list[LoadHost]], pytester: pytest.Pytester, tmp_path: Path
) -> None:
    (a,) = load_hosts(1)
    pytester.makepyfile(
        f"""
        import os, signal, subprocess, sys, time
        import pytest
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from load_servers import OrdersServer
        from pytest_resiliency import faults

        @pytest.mark.resiliency(rto="5s")
        def test_body(load, experiment):
            server = OrdersServer({a.host_ip!r})
            traffic = load(server.url, users=2, rate=40, workers=1, remote_workers=["load-a"],
                           master_bind_host={a.host_ip!r}, master_port=0)
            argv = ["ip", "netns", "exec", {a.name!r}, *traffic.worker_argv(name="load-a", python=sys.executable)]
            worker = subprocess.Popen(argv, start_new_session=True)
            traffic.wait_steady()
            os.killpg(worker.pid, signal.SIGKILL)  # the load host dies during the experiment
            worker.wait()
            with faults.custom(lambda: server.refuse(1.0), lambda: server.reopened.wait(5), name="refuse 1s"):
                server.reopened.wait(5)
            traffic.wait_recovered(timeout="60s")
        """
    )
    began = time.monotonic()
    result = pytester.runpytest()
    assert time.monotonic() - began < 30, "never a wait for the recovery timeout"
    # Whether the loss is seen during wait_recovered (a LoadError fails the body) or as the
    # load stops (the master's roll call), the experiment is aborted: an ERROR, never a pass.
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors") == 1 and outcomes.get("passed", 0) + outcomes.get("failed", 0) == 1
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_body*",
            "aborted: load: 'load-a' went missing (no message for *s) at +*s (1 user); 1 of 2 workers left (local-0)*",
            "*test_body*ABORTED*",
        ]
    )
    assert "locust" not in sys.modules


# -- on loopback (no namespace needed) --------------------------------------------------


def test_a_worker_with_another_plugin_version_is_refused(run: Any, tmp_path: Path) -> None:
    server = OrdersServer()
    try:
        traffic, _ = run(server.url, users=2, remote_workers=1, master_port=0)
        argv = traffic.worker_argv(name="old-host", python=sys.executable)
        env = {**os.environ, "RESILIENCY_TEST_PLUGIN_VERSION": "0.0.1"}
        with (tmp_path / "w.log").open("wb") as out:
            worker = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            assert _died_within(traffic, 30) < 20
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
            for leftover in Path(tempfile.gettempdir()).glob(f"resiliency-worker-{worker.pid}-*"):
                shutil.rmtree(leftover, ignore_errors=True)
    finally:
        traffic.stop()
        server.close()
    assert traffic.died is not None and traffic.died.startswith("load: worker 'old-host' was refused: it runs ")
    assert "pytest-resiliency 0.0.1 (the master runs " in traffic.died
    assert "install the same versions on every load host" in traffic.died


def test_start_timeout_bounds_the_wait_for_workers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_body(load):
            traffic = load("http://127.0.0.1:9", users=2, remote_workers=2, master_port=0)
            traffic.wait_steady(timeout="60s")
        """
    )
    began = time.monotonic()
    result = pytester.runpytest("--resiliency-load-start-timeout=3s")
    assert time.monotonic() - began < 15
    result.assert_outcomes(failed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*load: 0 of 2 workers joined within 3s (workers_timeout, default --resiliency-load-start-timeout)*"]
    )
    result.stdout.fnmatch_lines(["*not joined: 2 remote worker(s)*python3 -m pytest_resiliency.load.worker*"])


def test_bad_distributed_arguments_are_clear_errors(tmp_path: Path) -> None:
    cases = {
        "master_bind_host": ({"master_bind_host": "load-master.local", "remote_workers": 1}, "IPv4 address"),
        "port type": (
            {"master_port": "5557", "remote_workers": 1},
            "master_port=[^ ]+ must be a TCP port number between 0 and 65535",
        ),
        "port range": (
            {"master_port": 70000, "workers": 1},
            "master_port=[^ ]+ must be a TCP port number between 0 and 65535",
        ),
        "port alone": ({"master_port": 5557}, "needs a distributed run"),
        "names": ({"remote_workers": ["a", "a"]}, "distinct, non-empty worker names"),
        "local name": ({"remote_workers": ["local-0"]}, "local workers'"),
        "loss": (
            {"on_worker_loss": "ignore", "workers": 1},
            "on_worker_loss='ignore' is not accepted; use one of error, continue",
        ),
        "skew": ({"max_clock_skew": "soon", "workers": 1}, "max_clock_skew"),
        "timeout": ({"workers_timeout": 0, "remote_workers": 1}, "workers_timeout"),
    }
    for label, (options, expected) in cases.items():
        assert isinstance(options, dict)
        with pytest.raises(LoadError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            make_spec("http://127.0.0.1:9", **options)
        assert label


def test_a_busy_or_foreign_master_address_is_refused_before_locust_starts(run: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(LoadError, match=f"master_port={port} on 127.0.0.1 is in use"):
            run("http://127.0.0.1:9", workers=1, master_port=port)
    with pytest.raises(LoadError, match=re.escape("'192.0.2.77' is not an address of this host")):
        run("http://127.0.0.1:9", remote_workers=1, master_bind_host="192.0.2.77")


def test_worker_command_is_a_shell_line_and_refuses_a_wildcard_without_host(run: Any) -> None:
    traffic, _ = run("http://127.0.0.1:9", remote_workers=1, master_port=0, master_bind_host="0.0.0.0")
    try:
        with pytest.raises(LoadError, match="needs the address load hosts reach"):
            traffic.worker_command()
        line = traffic.worker_command("203.0.113.9", name="load a")
        assert line == (
            f"python3 -m pytest_resiliency.load.worker --master-host 203.0.113.9 "
            f"--master-port {traffic.master_port} --name 'load a'"
        )
    finally:
        traffic.stop()


def test_bad_max_clock_skew_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--resiliency-load-max-clock-skew=-1s")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--resiliency-load-max-clock-skew*"])


def test_clock_estimate_keeps_the_shortest_round_trip_and_bounds_the_truth() -> None:
    # Pure arithmetic of the sink's estimator (the module imports no locust until a run uses it).
    from pytest_resiliency.load.sink.cluster import Clock, correct, version_mismatch

    true_offset = 0.25  # the worker's clock is 250 ms ahead
    clock = Clock()
    # (send delay, worker turnaround, return delay): asymmetric paths bias one sample, never past rtt/2
    for out, turn, back in [(0.030, 0.001, 0.002), (0.001, 0.0005, 0.001), (0.004, 0.0, 0.020)]:
        t0 = 1000.0
        tw = t0 + out + true_offset
        clock.add(t0, tw, t0 + out + turn + back)
        assert clock.offset is not None and abs(clock.offset - true_offset) <= clock.uncertainty + 1e-9
    assert clock.uncertainty == pytest.approx(0.00125) and clock.max_uncertainty == pytest.approx(0.0165)
    # The worker's clock steps back 2 s (an NTP step): the next sample cannot agree, the old ones go.
    t0 = 2000.0
    assert clock.add(t0, t0 + 0.0005 + true_offset - 2.0, t0 + 0.002)
    assert clock.steps == 1 and clock.offset is not None
    assert abs(clock.offset - (true_offset - 2.0)) <= clock.uncertainty + 1e-9
    batch = [[2000.25, 0.01, 1, "GET /", None], ["w", "k", 2000.5, 2000.75, "ok"], ["w", "j", 2000.5, None, "fail"]]
    assert correct(batch, 0.25) == [
        [2000.0, 0.01, 1, "GET /", None],
        ["w", "k", 2000.25, 2000.5, "ok"],
        ["w", "j", 2000.25, None, "fail"],
    ]
    assert version_mismatch({"locust": "2.47.0", "plugin": "0.1.0"}, {"locust": "2.47.0", "plugin": "0.1.0"}) is None
    assert version_mismatch({"locust": "2.47.0", "plugin": "0.1.0"}, {"locust": "2.40.1", "plugin": "0.1.0"}) == (
        "runs locust 2.40.1 (the master runs 2.47.0); install the same versions on every load host"
    )
    assert "locust" not in sys.modules


def test_a_new_worker_removes_the_files_of_killed_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_resiliency.load.worker import TMP_PREFIX, remove_stale_dirs

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale, alive, other = (
        tmp_path / f"{TMP_PREFIX}{dead.pid}-ab",
        tmp_path / f"{TMP_PREFIX}{os.getpid()}-cd",
        tmp_path / "x",
    )
    for path in (stale, alive, other):
        path.mkdir()
    (stale / "resiliency_sink.py").write_text("")
    remove_stale_dirs()
    assert not stale.exists() and alive.exists() and other.exists()
