"""Fixtures of the example suite: the demo workload, each test on its own processes and ports.

``demo`` builds supervised services of the demo workload (``resiliency_tests/demo``):
``demo.orders(durability="snapshot", snapshot_interval="2s")``, ``demo.ledger()``,
``demo.front(primary, replica)``. Every service gets a free port, its own data directory
and log under the test's ``tmp_path``, and is stopped when the test ends, so tests never
collide under ``-n 2``. Each service's log tail is attached to the test's report.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from resiliency_tests.demo.harness import command

if TYPE_CHECKING:
    from pytest_resiliency.experiment import Experiment
    from pytest_resiliency.faults.network import Proxy
    from pytest_resiliency.load.controller import Traffic
    from pytest_resiliency.targets.service import Service

    Load = Callable[..., Traffic]  # the ``load`` fixture
    ProxyFactory = Callable[..., Proxy]  # the ``proxy`` fixture

HEALTH = "http://127.0.0.1:{port}/health"
# The demo experiments' load: 10 users x 20 requests/s, open loop. At 200 req/s a change of state
# is seen within about 5 ms (benchmarks/README.md, "RTO accuracy"), so every count below (a
# baseline of 100 successes, a recovery window of 100 successes) arrives in half a second.
# Each experiment chooses its own baseline, fault length and recovery window and says why.
RATE = 200
USERS = 10


class Demo:
    """Starts demo services for one test and stops them all at its end."""

    def __init__(self, tmp_path: Path, experiment: Experiment, service: Callable[..., Service]) -> None:
        self.tmp_path = tmp_path
        self.experiment = experiment
        self.service = service  # the plugin's supervisor factory: stops them and attaches their logs

    def _start(self, name: str, argv: list[str], restart: str, restart_delay: str) -> Service:
        return self.service(argv, name=name, health=HEALTH, restart=restart, restart_delay=restart_delay)

    def orders(
        self,
        durability: str = "fsync",
        *,
        name: str = "orders",
        snapshot_interval: str | None = None,
        ledger: str | None = None,
        ledger_timeout: str | None = None,
        replica_of: Service | None = None,
        replication_lag: str | None = None,
        data_dir: Path | None = None,
        restart: str = "always",
        restart_delay: str = "200ms",
    ) -> Service:
        """The orders API, restarted by its supervisor per ``restart`` after a crash."""
        args = ["--port", "{port}", "--durability", durability]
        if durability != "memory":
            args += ["--data-dir", str(data_dir or self.tmp_path / f"{name}-data")]
        options = {
            "--snapshot-interval": snapshot_interval,
            "--ledger": ledger,
            "--ledger-timeout": ledger_timeout,
            "--replica-of": f"127.0.0.1:{replica_of.port}" if replica_of is not None else None,
            "--replication-lag": replication_lag,
        }
        args += [item for flag, value in options.items() if value is not None for item in (flag, value)]
        return self._start(name, command("orders", *args), restart, restart_delay)

    def ledger(self, name: str = "ledger") -> Service:
        """The ledger dependency the orders API posts every order to."""
        return self._start(name, command("ledger", "--port", "{port}"), "always", "200ms")

    def front(self, primary: Service, replica: Service, name: str = "front") -> Service:
        """A stable port that forwards to ``primary`` and fails over to ``replica``."""
        status_file = self.tmp_path / f"{name}.admin-port"
        argv = command(
            "front",
            "--port",
            "{port}",
            "--primary",
            f"127.0.0.1:{primary.port}",
            "--replica",
            f"127.0.0.1:{replica.port}",
            "--admin-port-file",
            str(status_file),
        )
        svc = self._start(name, argv, "always", "200ms")
        self.experiment.attach(f"{name} status", lambda: front_status(status_file))
        return svc


def health(svc: Service, timeout: float = 2.0) -> dict[str, Any]:
    """The demo service's ``GET /health`` document."""
    with urllib.request.urlopen(f"{svc.url}/health", timeout=timeout) as response:
        return dict(json.loads(response.read()))


def front_status(status_file: Path) -> dict[str, Any]:
    """The front's ``GET /status``: its upstream and failover history."""
    port = status_file.read_text().strip()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2) as response:
        return dict(json.loads(response.read()))


def await_evidence(
    traffic: Traffic, what: str, *, successes: int = 0, failures: int = 0, timeout: float = 15.0
) -> None:
    """Block until the load has seen ``successes`` more successful and ``failures`` more failed requests.

    Faults are held, and evidence gathered, by count rather than by a sleep: the count is what
    makes the evidence sufficient (a p99 over 200 requests, every user timed out twice), and it
    is reached as soon as the load delivers it. Fails the test naming ``what`` when the count is
    not reached within ``timeout`` (the load died, or the fault was never felt).
    """
    ingest = traffic.ingest
    start: list[tuple[int, int]] = []

    def read_counters() -> bool:
        start.append((ingest.successes, ingest.requests))
        return True

    # Read both counters under the ingest's lock (the predicate runs under it), never half a batch.
    ingest.wait(read_counters, 0)
    ok0, requests0 = start[0]

    def seen() -> tuple[int, int]:
        ok = ingest.successes - ok0
        return ok, ingest.requests - requests0 - ok

    def enough() -> bool:
        ok, failed = seen()
        return not traffic.running or (ok >= successes and failed >= failures)

    ingest.wait(enough, timeout)
    ok, failed = seen()
    if ok < successes or failed < failures:
        pytest.fail(
            f"{what}: the load saw {ok} successes and {failed} failures in {timeout:g}s "
            f"(needed {successes} and {failures}){'; the load stopped' if not traffic.running else ''}",
            pytrace=False,
        )


def wait_for(predicate: Any, timeout: float, what: str, every: float = 0.05) -> None:
    """Poll ``predicate`` (bounded) for state another process changes; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    pytest.fail(f"{what} did not happen within {timeout:g}s", pytrace=False)


@pytest.fixture
def demo(tmp_path: Path, experiment: Experiment, service: Callable[..., Service]) -> Demo:
    """Services of the demo workload for this test (the ``service`` fixture stops them at its end)."""
    return Demo(tmp_path, experiment, service)


@pytest.fixture
def orders(demo: Demo) -> Service:
    """The demo orders API (fsync per write, restarted 200 ms after a crash): the README's first example."""
    return demo.orders("fsync")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs that this test owns, so filling it touches no one else's disk (needs root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a private tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        with contextlib.suppress(OSError):
            subprocess.run(["umount", "-l", str(mount)], check=False)


# The selection markers of this suite (``pytest -m "resiliency and not aws"``). A suite owns its
# selection markers: the plugin registers only ``resiliency`` and ``ctk``.
SELECTION_MARKERS = {
    "aws": "the experiment acts on AWS resources (moto by default, real AWS only when allow-listed)",
    "local": "the experiment acts on local processes and resources only",
    "network": "the experiment injects network faults (fault proxy, nftables)",
    "destructive": "the experiment kills, fills or breaks something it does not own",
    "slow": "the experiment takes more than a few seconds",
    "datastore": "experiments against real Redis, PostgreSQL, etcd and HAProxy servers (Debian packages)",
}


def pytest_configure(config: pytest.Config) -> None:
    for name, text in SELECTION_MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Say where the reports of the main job went."""
    paths = [
        ("HTML report", config.getoption("htmlpath", None)),
        ("JUnit XML", config.getoption("xmlpath", None)),
        ("JSON journal", config.getoption("resiliency_json", None)),
    ]
    written = [(what, Path(p).resolve()) for what, p in paths if p]
    if written:
        terminalreporter.section("resiliency reports")
        for what, path in written:
            terminalreporter.write_line(f"{what}: {path}")


def _duration_tier(item: pytest.Item) -> int:
    """0: the locust experiments (``slow``, 2-4 s each); 1: AWS (the first on each worker starts
    moto and loads its EC2 backend, 2-4 s; the others take under 1 s); 2: the rest (datastores,
    1-3 s each)."""
    if item.get_closest_marker("slow"):
        return 0
    return 1 if item.get_closest_marker("aws") else 2


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the longest experiments first (a stable sort: file order within a tier).

    xdist hands tests out as workers free up; with the long ones first and the short ones
    last, the workers finish within about one short test of each other (longest-first is
    the classic greedy balance). Serially the order changes nothing. Only this suite's own
    items move, within the places they held: any other item keeps its position.
    """
    here = Path(__file__).parent
    slots = [i for i, item in enumerate(items) if here in item.path.parents]
    ordered = sorted((items[i] for i in slots), key=_duration_tier)
    for i, item in zip(slots, ordered, strict=True):
        items[i] = item
