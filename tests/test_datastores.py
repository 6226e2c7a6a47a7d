"""Datastore targets against the real servers (skipped, naming the Debian package, when one is missing)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import psutil
import pytest

from pytest_resiliency import faults
from pytest_resiliency.experiment import Experiment
from pytest_resiliency.load.spec import LoadError
from pytest_resiliency.load.store_load import client_options
from pytest_resiliency.targets.datastores import MissingBinary, etcd, haproxy, postgres, redis, require


def test_log_time_parsers_read_each_servers_own_timestamps() -> None:
    utc = dt.datetime(2026, 11, 29, 15, 24, 29, 870000, tzinfo=dt.UTC).timestamp()
    assert etcd.log_time('{"level":"info","ts":"2026-11-29T15:24:29.870Z","msg":"x"}') == pytest.approx(utc)
    assert postgres.log_time("2026-11-29 15:24:29.870 UTC [12] LOG:  database system is ready") == pytest.approx(utc)
    assert haproxy.log_time("2026-11-29T15:24:29.870000+00:00 Server be/s1 is DOWN") == pytest.approx(utc)
    local = dt.datetime(2026, 11, 29, 15, 24, 29, 870000).timestamp()  # redis logs local time
    assert redis.log_time("123:M 29 Nov 2026 15:24:29.870 * Ready to accept connections") == pytest.approx(local)
    assert redis.log_time("no stamp") is None and etcd.log_time("not json") is None


def test_a_missing_binary_names_its_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(MissingBinary, match=r"redis-server not found: install the Debian package redis-server"):
        require("redis-server", "redis-server")


def test_fixtures_skip_naming_the_package_when_the_binary_is_missing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os
        def test_redis(redis_server, monkeypatch):
            monkeypatch.setenv("PATH", "/nonexistent")
            redis_server()
        def test_haproxy(haproxy_server, monkeypatch):
            monkeypatch.setenv("PATH", "/nonexistent")
            haproxy_server([1234])
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*install the Debian package redis-server*", "*install the Debian package haproxy*"])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda s, d: redis.RedisServer(s, d, persistence="sometimes"), "persistence='sometimes' is not a mode"),
        (lambda s, d: redis.RedisServer(s, d, persistence="rdb", save=0.5), "save=0.5 must be a snapshot interval"),
        (lambda s, d: postgres.PostgresServer(s, synchronous_commit="maybe"), "synchronous_commit='maybe'"),
        (lambda s, d: postgres.PostgresServer(s, wal_writer_delay="20s"), "between 1ms and 10s"),
        (lambda s, d: etcd.EtcdCluster(s, d, nodes=0), "nodes=0 must be a whole number >= 1"),
        (lambda s, d: etcd.EtcdCluster(s, d, heartbeat="100ms", election="200ms"), "at least 5 x heartbeat"),
        (lambda s, d: haproxy.HAProxy(s, d, []), "backends=\\[\\] names no backend"),
        (lambda s, d: haproxy.HAProxy(s, d, [80], fall=0), "fall=0 must be a whole number >= 1"),
        (lambda s, d: haproxy.HAProxy(s, d, ["web"]), "backend 'web' must be a service"),
        (lambda s, d: haproxy.HAProxy(s, d, [80], mode="udp"), "mode='udp' is not accepted"),
    ],
)
def test_bad_datastore_options_are_clear_errors(service: Any, tmp_path: Path, make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make(service, tmp_path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("mongo", "redis://h:1", 1, None, None, {}), "client='mongo' is not a store client; accepted: redis"),
        (("redis", "http://h:1", 1, None, None, {}), "client='redis' needs a redis:// URL"),
        (("redis", "redis://h:1", 1, None, 0.5, {}), "only writes"),
        (("etcd", "etcd://h:1", 0, None, None, {}), "users=0 must be a whole number >= 1"),
        (("redis", "redis://h:1", 1, None, None, {"locustfile": "x.py"}), "either client= or locustfile="),
    ],
)
def test_bad_load_client_arguments_are_clear_errors(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(LoadError, match=message):
        client_options(*args)


def test_load_client_options_target_the_store_users() -> None:
    host, options = client_options("etcd", "etcd://127.0.0.1:1,127.0.0.1:2", 4, 200, None, {"workers": 2})
    assert host == "http://127.0.0.1" and options["workers"] == 2
    assert options["locustfile"].endswith("sink/clients.py")
    assert options["locust_args"][0] == "--resiliency-client" and '"rate":50.0' in options["locust_args"][1]


def test_redis_target_ready_put_read_scan_and_truth(redis_server: Any) -> None:
    server = redis_server(persistence="aof-everysec")
    server.put("rz-a")
    server.put("rz-b")
    assert server.reader(["rz-a", "rz-b", "rz-c"]) == ["rz-a", "rz-b"]
    assert server.all_keys() == ["rz-a", "rz-b"]
    assert [e.name for e in server.truth()] == ["redis ready"]
    assert (server.data_dir / "redis.conf").read_text().count("appendfsync everysec") == 1


def test_postgres_runs_unprivileged_when_root_and_is_ready_by_query(postgres_server: Any) -> None:
    server = postgres_server()
    assert server.process.pid is not None
    owner = psutil.Process(server.process.pid).uids().real
    if os.geteuid() == 0:
        assert owner != 0 and server.account is not None and owner == server.account.uid
    server.put("rz-1")
    assert server.reader(["rz-1", "rz-2"]) == ["rz-1"] and server.all_keys() == ["rz-1"]
    assert any(e.name == "postgres ready" for e in server.truth())
    root = server.root
    server.stop()
    assert not root.exists()


def test_etcd_cluster_starts_together_and_finds_its_leader_after_a_kill(etcd_cluster: Any) -> None:
    cluster = etcd_cluster(nodes=3, restart_delay="10s")
    leader = cluster.leader
    assert len(cluster) == 3 and leader in list(cluster) and len(cluster.followers) == 2
    cluster.put("rz-x")
    with faults.kill(leader):
        pass
    new = cluster.wait_leader(timeout="10s", other_than=leader)
    assert new is not leader and leader in cluster.followers  # the old leader is down, a follower on paper
    assert cluster.reader(["rz-x"]) == ["rz-x"]
    elections = cluster.truth()
    assert len(elections) >= 2 and elections[-1].member != leader.name  # two elections in the logs


def test_haproxy_states_and_config(service: Any, haproxy_server: Any, tmp_path: Path) -> None:
    import sys

    web = service(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "{port}"],
        health="tcp://127.0.0.1:{port}",
        cwd=tmp_path,
    )
    lb = haproxy_server([web, web.port], inter="100ms", fall=2, rise=1, redispatch=True)
    assert lb.server(web) == "s1" and set(lb.states()) == {"s1", "s2"}
    assert all(state.startswith("UP") for state in lb.states().values())
    assert "default-server inter 100ms fall 2 rise 1" in lb.config and "option redispatch 1" in lb.config
    import urllib.request

    with urllib.request.urlopen(lb.url + "/", timeout=5) as response:
        assert response.status == 200
    (tmp_path / "present.txt").write_text("x")  # http.server serves its working directory
    assert lb.reader(["present.txt", "absent.txt"], path="/{key}") == ["present.txt"]


@pytest.mark.resiliency(rpo=0, recovery_window="300ms")
def test_load_client_redis_runs_in_distributed_locust_workers(
    redis_server: Any, load: Any, experiment: Experiment
) -> None:
    """The store users run in a master + 2 local workers; their writes and classified errors reach
    the timeline and the ledger."""
    server = redis_server(persistence="aof-always")
    traffic = load(server.url, client="redis", users=4, rate=100, workers=2)
    traffic.wait_steady(successes=50)
    with faults.kill(server):
        pass
    assert traffic.wait_recovered(timeout="15s")
    traffic.stop()
    known = {"ConnectionRefusedError", "ConnectionResetError", "ConnectionError", "BusyLoadingError", "Timeout"}
    assert set(traffic.stats()["errors"]) <= known  # short labels, LOADING included
    ledger = experiment.verify_writes(server.reader)
    assert ledger.acknowledged >= 50 and ledger.lost == 0
    assert set(server.all_keys()) <= set(experiment.timeline.snapshot().write_keys)  # nothing unexpected
    assert experiment.measure().sources == ("load",)
