"""The public API is typed for users: a wrong keyword on a probe, a target selector or a fixture
factory fails ``mypy --strict`` in the user's own test code (lazy imports notwithstanding).

One mypy run over one snippet: the lines marked ``# error`` must be reported (and only those),
so the correct calls above them also prove that the right keywords type-check.
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pytest_resiliency.targets import aws as aws_targets
from pytest_resiliency.targets import fixtures, service
from pytest_resiliency.targets.datastores import etcd, haproxy, postgres, redis

ROOT = Path(__file__).resolve().parent.parent

SNIPPET = """
from pytest_resiliency import (
    EtcdClusterFactory,
    Experiment,
    HAProxyFactory,
    PostgresServerFactory,
    RedisServerFactory,
    ServiceFactory,
    probes,
)
from pytest_resiliency.targets import aws as targets


def test_right(
    experiment: Experiment,
    service: ServiceFactory,
    redis_server: RedisServerFactory,
    postgres_server: PostgresServerFactory,
    etcd_cluster: EtcdClusterFactory,
    haproxy_server: HAProxyFactory,
) -> None:
    web = service(["python3", "-m", "http.server", "{port}"], health="http://127.0.0.1:{port}/", restart="always")
    experiment.monitor(probes.http(web.url, timeout="1s"), every="50ms")
    experiment.monitor(probes.tcp("127.0.0.1", 6379, timeout=0.5))
    experiment.monitor(probes.process(web, name="web"))
    experiment.monitor(probes.alarm("HighErrors", record_alert=False))
    experiment.monitor(probes.prometheus("http://127.0.0.1:9090", "up", below=1.0))
    redis_server(persistence="rdb", save=1, start_timeout="5s").put("k")
    postgres_server(synchronous_commit="on", wal_writer_delay="200ms")
    etcd_cluster(nodes=3, election="500ms").url.startswith("etcd://")
    haproxy_server([web], inter="200ms", fall=3, redispatch=True)
    targets.ec2_instances(tags={"app": "web"}, mode="COUNT(1)")


def test_wrong(service: ServiceFactory, redis_server: RedisServerFactory, etcd_cluster: EtcdClusterFactory) -> None:
    probes.process(123, nonsense=1)  # error
    probes.http("http://127.0.0.1/", timout="1s")  # error
    probes.alarm("HighErrors", sesion=None)  # error
    service(["python3"], restart_dealy="1s")  # error
    redis_server(persistense="rdb")  # error
    etcd_cluster(node=3)  # error
    targets.ec2_instances(tag={"app": "web"})  # error
"""


def test_wrong_keywords_fail_mypy_strict_in_user_code(tmp_path: Path) -> None:
    pytest.importorskip("mypy", reason="mypy (pip extra test) type-checks the user snippet")
    snippet = tmp_path / "test_user.py"
    snippet.write_text(textwrap.dedent(SNIPPET))
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--cache-dir", "cache", snippet.name],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"MYPYPATH": str(ROOT), "PATH": "/usr/bin:/bin"},  # this checkout, not an installed copy
        check=False,
    )
    expected = {n for n, line in enumerate(snippet.read_text().splitlines(), 1) if line.endswith("# error")}
    reported: dict[int, list[str]] = {}
    for line in done.stdout.splitlines():
        found = re.match(rf"{snippet.name}:(\d+): error: (.*)", line)
        if found:
            reported.setdefault(int(found.group(1)), []).append(found.group(2))
    assert set(reported) == expected, done.stdout + done.stderr
    for number in expected:
        assert any('Unexpected keyword argument "' in text for text in reported[number]), reported[number]


def _keywords(function: Any, skip: int) -> dict[str, Any]:
    """Parameter name -> default, after the first ``skip`` positional ones and without ``**options``."""
    params = list(inspect.signature(function).parameters.values())[skip:]
    return {p.name: p.default for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD}


@pytest.mark.parametrize(
    ("protocol", "target", "supplied"),
    [
        (fixtures.RedisServerFactory, redis.RedisServer, 3),  # self, service, data_dir
        (fixtures.PostgresServerFactory, postgres.PostgresServer, 2),  # self, service
        (fixtures.EtcdClusterFactory, etcd.EtcdCluster, 3),
        (fixtures.HAProxyFactory, haproxy.HAProxy, 3),
    ],
)
def test_factory_types_mirror_their_targets(protocol: Any, target: Any, supplied: int) -> None:
    """The factory types restate their target's keywords: they must not drift apart."""
    assert list(_keywords(protocol.__call__, 1)) == list(_keywords(target.__init__, supplied))


def test_option_types_mirror_the_service_and_the_selector() -> None:
    service_keywords = set(_keywords(service.Service.__init__, 2))
    assert set(service.ServiceOptions.__annotations__) | set(service.PassThroughOptions.__annotations__) == (
        service_keywords
    )
    assert set(aws_targets.SelectorOptions.__annotations__) == set(_keywords(aws_targets.Selector.__init__, 2))
