"""Datastore experiments: the plugin's figures against independent truth, several runs per case.

For each case a real server (Redis, PostgreSQL, an etcd cluster, HAProxy) takes open-loop
writes (or locust HTTP load through HAProxy), is faulted, and recovers. Then:

* **lost writes**: the plugin's ledger (``experiment.verify_writes(target.reader)``) against
  the truth = the client's *own* list of acknowledged keys minus a *full scan* of the store
  (``target.all_keys()``: SCAN, ``SELECT key``, a range over the whole keyspace);
* **RTO**: the plugin's RTO against the server's *own log timestamps*: Redis and PostgreSQL
  "ready to accept connections", etcd "elected leader", HAProxy "Server be/s1 is DOWN",
  each minus ``t_inject``. The difference is what the client needs to see it (a connection,
  a first reply): milliseconds at 200 writes/s.

Run: ``python benchmarks/bench_datastores.py --runs 3`` (a missing binary skips its case).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_resiliency import faults
from pytest_resiliency.budget import Criteria
from pytest_resiliency.experiment import Experiment, set_current
from pytest_resiliency.load.writer import Writer
from pytest_resiliency.targets.datastores import MissingBinary
from pytest_resiliency.targets.fixtures import ServiceFactory
from resiliency_tests.demo.harness import command

RATE = 200


class _Temp:
    """What ``ServiceFactory`` needs of pytest's tmp_path_factory."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="bench-ds-"))

    def mktemp(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.root))


def _run(case: Callable[[ServiceFactory, Experiment, _Temp], dict[str, Any]]) -> dict[str, Any]:
    temp = _Temp()
    factory = ServiceFactory(temp)  # type: ignore[arg-type]
    experiment = Experiment("bench", criteria=Criteria(window=0.5))
    set_current(experiment)
    try:
        return case(factory, experiment, temp)
    finally:
        experiment.finish(settle=False)
        set_current(None)
        factory.stop_all()


def _writes(experiment: Experiment, target: Any, **options: Any) -> Writer:
    writer = Writer(experiment, target, rate=options.pop("rate", RATE), **options)
    experiment.add_source(writer)
    return writer.start().wait_steady(successes=100, timeout="20s")


def _rto_upper(experiment: Experiment) -> float | None:
    """The judged RTO: the upper end of the recovery bracket (completion of the first success
    sent after the last failure, minus ``t_inject``)."""
    return experiment.measure().rto


def _ledger_case(target: Any, experiment: Experiment, writer: Writer, truth_event: str) -> dict[str, Any]:
    fault = faults.kill(target)
    experiment.inject(fault)
    t_inject = experiment.last_injection
    assert t_inject is not None
    writer.wait_recovered(timeout="30s")
    writer.stop()
    ledger = experiment.verify_writes(target.reader)
    stored = set(target.all_keys())
    truly_lost = [k for k, _ in writer.acks if k not in stored]
    events = [e.at for e in target.truth() if truth_event in e.name and e.at >= t_inject]
    return {
        "lost": ledger.lost,
        "truth_lost": len(truly_lost),
        "acknowledged": ledger.acknowledged,
        "rto": _rto_upper(experiment),
        "truth_rto": (min(events) - t_inject) if events else None,
    }


def redis_case(persistence: str) -> Callable[[ServiceFactory, Experiment, _Temp], dict[str, Any]]:
    def case(factory: ServiceFactory, experiment: Experiment, temp: _Temp) -> dict[str, Any]:
        from pytest_resiliency.targets.datastores.redis import RedisServer

        server = RedisServer(factory, temp.mktemp("redis"), persistence=persistence).start()
        return _ledger_case(server, experiment, _writes(experiment, server), "ready")

    return case


def postgres_case(synchronous_commit: str) -> Callable[[ServiceFactory, Experiment, _Temp], dict[str, Any]]:
    def case(factory: ServiceFactory, experiment: Experiment, temp: _Temp) -> dict[str, Any]:
        from pytest_resiliency.targets.datastores.postgres import PostgresServer

        server = PostgresServer(factory, synchronous_commit=synchronous_commit, wal_writer_delay="1s")
        try:
            server.start()
            return _ledger_case(server, experiment, _writes(experiment, server), "ready")
        finally:
            server.stop()

    return case


def etcd_case(factory: ServiceFactory, experiment: Experiment, temp: _Temp) -> dict[str, Any]:
    from pytest_resiliency.targets.datastores.etcd import EtcdCluster

    cluster = EtcdCluster(factory, temp.mktemp("etcd"), nodes=3, restart_delay="5s").start()
    writer = _writes(experiment, cluster, rate=100, concurrency=128)
    leader = cluster.leader
    experiment.inject(faults.kill(leader))
    t_inject = experiment.last_injection
    assert t_inject is not None
    writer.wait_recovered(timeout="30s")
    writer.stop()
    ledger = experiment.verify_writes(cluster.reader)
    stored = set(cluster.all_keys())
    elected = [e.at for e in cluster.truth() if e.at >= t_inject]
    return {
        "lost": ledger.lost,
        "truth_lost": len([k for k, _ in writer.acks if k not in stored]),
        "acknowledged": ledger.acknowledged,
        "rto": _rto_upper(experiment),
        "truth_rto": (min(elected) - t_inject) if elected else None,
    }


def haproxy_case(factory: ServiceFactory, experiment: Experiment, temp: _Temp) -> dict[str, Any]:
    import urllib.request

    from pytest_resiliency.targets.datastores.haproxy import HAProxy

    backends = [
        factory(command("orders", "--port", "{port}", "--durability", "memory"), name=f"web{i}", restart="never",
                health="http://127.0.0.1:{port}/health")
        for i in (1, 2)
    ]  # fmt: skip
    lb = HAProxy(factory, temp.mktemp("haproxy"), backends, inter="200ms", fall=3).start()

    def get(key: str) -> None:
        with urllib.request.urlopen(f"{lb.url}/health", timeout=2) as response:
            response.read()

    writer = _writes(experiment, get, concurrency=8, classify="default", name="http")
    experiment.inject(faults.kill(backends[0]))
    t_inject = experiment.last_injection
    assert t_inject is not None
    writer.wait_recovered(timeout="30s")
    writer.stop()
    down = [e.at for e in lb.truth() if e.name == "s1 DOWN"]
    return {
        "lost": None,
        "truth_lost": None,
        "acknowledged": len(writer.acks),
        "rto": _rto_upper(experiment),
        "truth_rto": (down[0] - t_inject) if down else None,
    }


CASES: dict[str, Callable[[ServiceFactory, Experiment, _Temp], dict[str, Any]]] = {
    "redis aof-always, SIGKILL": redis_case("aof-always"),
    "redis aof-everysec, SIGKILL": redis_case("aof-everysec"),
    "redis rdb 1s, SIGKILL": redis_case("rdb"),
    "redis no persistence, SIGKILL": redis_case("none"),
    "postgres synchronous_commit=on, SIGKILL": postgres_case("on"),
    "postgres synchronous_commit=off, SIGKILL": postgres_case("off"),
    "etcd x3, leader SIGKILL": etcd_case,
    "haproxy inter 200ms fall 3, backend SIGKILL": haproxy_case,
}


def _ms(values: list[float]) -> str:
    if not values:
        return "n/a"
    scaled = [v * 1000 for v in values]
    return f"{statistics.median(scaled):+.1f} ms [{min(scaled):+.1f} .. {max(scaled):+.1f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--case", action="append", help="only cases whose name contains this")
    args = parser.parse_args()
    print("| case | lost: plugin vs full scan | RTO (median) | RTO - server log | acknowledged |")
    print("|---|---|---|---|---|")
    for name, case in CASES.items():
        if args.case and not any(c in name for c in args.case):
            continue
        results = []
        try:
            for _ in range(args.runs):
                results.append(_run(case))
                time.sleep(0.2)
        except MissingBinary as exc:
            print(f"| {name} | skipped: {exc} | | | |")
            continue
        if results[0]["lost"] is None:
            lost = "n/a (no ledger)"
        else:
            equal = all(r["lost"] == r["truth_lost"] for r in results)
            counts = ", ".join(f"{r['lost']}/{r['truth_lost']}" for r in results)
            lost = f"{'equal' if equal else 'DIFFERENT'} in {len(results)} runs ({counts})"
        rtos = [r["rto"] for r in results if r["rto"] is not None]
        errors = [r["rto"] - r["truth_rto"] for r in results if r["rto"] is not None and r["truth_rto"] is not None]
        acked = statistics.median(r["acknowledged"] for r in results)
        rto = statistics.median(rtos) * 1000
        print(f"| {name} | {lost} | {rto:.0f} ms | {_ms(errors)} | {acked:.0f} |", flush=True)


if __name__ == "__main__":
    main()
