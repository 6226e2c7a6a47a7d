"""Prometheus evidence against a real Prometheus server scraping the demo workload.

A Prometheus (Debian package ``prometheus``) on loopback scrapes the demo orders API every
100 ms. A client posts orders while the ledger dependency is paused (SIGSTOP): orders
answer 503 until it resumes. The team's SLI — no 5xx answered in the last 300 ms — is
monitored live as a probe and imported as a range afterwards; both RTOs are checked against
what the client itself saw, within the SLI's own lag (window + scrape + step).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_resiliency import faults, probes
from pytest_resiliency.budget import Budget, Criteria
from pytest_resiliency.experiment import Experiment
from pytest_resiliency.probes import ProbeFailed
from pytest_resiliency.verdict import judge
from resiliency_tests.demo.harness import DemoProcess, request

PROMETHEUS = shutil.which("prometheus")
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus is not installed (Debian package: apt-get install prometheus)"
)
SCRAPE = 0.1
WINDOW = 0.3
STEP = 0.1
OUTAGE = 1.0
ERRORS = f'sum(increase(demo_http_requests_total{{role="orders",code=~"5.."}}[{int(WINDOW * 1000)}ms])) or vector(0)'


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, timeout: float = 1.0) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
    try:
        with opener.open(url, timeout=timeout) as response:
            return response.status, response.read()
    except OSError:
        return 0, b""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoProcess, DemoProcess]]:
    """The ledger and an orders API calling it (200 ms ledger timeout)."""
    logs = tmp_path_factory.mktemp("demo")
    ledger = DemoProcess("ledger", log=logs / "ledger.log").start()
    orders = DemoProcess(
        "orders",
        "--durability",
        "memory",
        "--ledger",
        f"127.0.0.1:{ledger.port}",
        "--ledger-timeout",
        "200ms",
        log=logs / "orders.log",
    ).start()
    try:
        yield ledger, orders
    finally:
        orders.stop()
        ledger.stop()


@pytest.fixture(scope="module")
def prometheus_url(demo: tuple[DemoProcess, DemoProcess], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus on loopback scraping the orders API every 100 ms; stopped at the end."""
    if PROMETHEUS is None:
        pytest.skip("prometheus is not installed (Debian package: apt-get install prometheus)")
    _, orders = demo
    root = tmp_path_factory.mktemp("prometheus")
    config = root / "prometheus.yml"
    config.write_text(
        f"global:\n  scrape_interval: {int(SCRAPE * 1000)}ms\n  scrape_timeout: {int(SCRAPE * 1000)}ms\n"
        f"scrape_configs:\n  - job_name: orders\n    static_configs:\n      - targets: ['127.0.0.1:{orders.port}']\n"
    )
    port = _free_port()
    log = (root / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1h",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        up = probes.prometheus(url, 'up{job="orders"} == 1', name="orders up")
        while True:  # ready, and the orders target scraped at least once
            if proc.poll() is not None:
                tail = (root / "prometheus.log").read_text()[-2000:]
                pytest.fail(f"prometheus exited with {proc.returncode}: {tail}")
            try:
                up()
                break
            except ProbeFailed:
                if time.monotonic() > deadline:
                    pytest.fail(f"prometheus never scraped the demo: {(root / 'prometheus.log').read_text()[-2000:]}")
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


class Client(threading.Thread):
    """POSTs an order every 10 ms and keeps what it saw (start, latency, ok): the truth to compare with."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.seen: list[tuple[float, float, bool]] = []
        self.stopped = threading.Event()

    def wait_recovered(self, window: float, timeout: float) -> bool:
        """Until the client's own evidence holds ``window`` seconds of successes after its last failure."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = list(self.seen)
            last_fail = max((s for s, _, ok in seen if not ok), default=None)
            if last_fail is not None and seen and seen[-1][0] - last_fail >= window:
                return True
            time.sleep(0.02)
        return False

    def run(self) -> None:
        i = 0
        while not self.stopped.is_set():
            start = time.time()
            try:
                status, _ = request(self.url, "POST", "/orders", {"key": f"k{i}-{start}"}, timeout=1.0)
            except OSError:
                status = 0
            self.seen.append((start, time.time() - start, 200 <= status < 300))
            i += 1
            self.stopped.wait(0.01)


@pytest.mark.slow
@needs_prometheus
def test_rto_judged_on_a_prometheus_sli_matches_what_the_client_saw(
    demo: tuple[DemoProcess, DemoProcess], prometheus_url: str
) -> None:
    ledger, orders = demo
    sli = probes.prometheus(prometheus_url, ERRORS, below=0.5, name="orders-5xx")
    sli()  # healthy before the fault: no 5xx in the window

    experiment = Experiment("test::prometheus", Budget(rto=5.0), Criteria(successes=3, window=0.5))
    client = Client(orders.url)
    client.start()
    try:
        experiment.monitor(sli, every=STEP)  # live evidence: the instant query, as any probe
        time.sleep(0.5)  # a baseline of healthy traffic before the fault
        assert ledger.pid is not None
        fault = experiment.inject(faults.pause(ledger.pid))
        try:
            time.sleep(OUTAGE)  # the outage itself: the ledger stays paused this long
        finally:
            fault.revert()
        assert experiment.wait_recovered(timeout="20s"), "the SLI never recovered"
        assert client.wait_recovered(1.2, timeout=20), "the client never saw 1.2 s without failures"
    finally:
        client.stopped.set()
        client.join(5)
        experiment.finish(settle=False)
    live = experiment.measure(source="probe:orders-5xx")

    imported = sli.import_range(experiment, step=STEP)
    assert imported > 30
    on_sli = experiment.measure(source="prometheus:orders-5xx")

    for start, latency, ok in client.seen:
        experiment.record_operation(start, latency, ok, "POST /orders", source="client")
    truth = experiment.measure(source="client")

    statuses = (truth.status, on_sli.status, live.status)
    assert statuses == ("recovered",) * 3, statuses
    assert truth.rto is not None and on_sli.rto is not None and live.rto is not None
    # what the client saw: the ledger's pause (a request sent up to the 200 ms ledger timeout
    # before the resume may still succeed)
    assert OUTAGE - 0.3 <= truth.rto <= OUTAGE + 0.5
    lag = WINDOW + 2 * SCRAPE + STEP + 0.3  # the SLI's own lag, plus slack for a shared machine
    assert truth.rto - STEP <= on_sli.rto <= truth.rto + lag, (truth.rto, on_sli.rto)
    assert truth.rto - STEP <= live.rto <= truth.rto + lag + 0.5, (truth.rto, live.rto)
    stated = next(getattr(on_sli, n) for n in ("uncertainty", "rto_uncertainty", "resolution") if hasattr(on_sli, n))
    assert stated is not None and stated <= STEP + 0.01  # one step: the evidence's spacing
    verdict = judge(on_sli, experiment.budget)
    assert verdict.passed, verdict.line
    assert not judge(on_sli, Budget(rto=on_sli.rto / 2)).passed


@needs_prometheus
def test_instant_probe_rules_and_errors(prometheus_url: str) -> None:
    up = 'up{job="orders"}'
    probes.prometheus(prometheus_url, up)()  # 1: non-zero passes
    probes.prometheus(prometheus_url, f"{up} > bool 5")  # built lazily: nothing queried yet
    with pytest.raises(ProbeFailed, match="the condition is false"):
        probes.prometheus(prometheus_url, f"{up} > bool 5")()
    with pytest.raises(ProbeFailed, match="no samples"):
        probes.prometheus(prometheus_url, f"{up} == 7")()
    probes.prometheus(prometheus_url, f"{up} == 7", empty_ok=True)()
    probes.prometheus(prometheus_url, up, below=2, above=0)()
    with pytest.raises(ProbeFailed, match="1 is not below 1"):
        probes.prometheus(prometheus_url, up, below=1)()
    probes.prometheus(prometheus_url, "scalar(up)", above=0.5)()  # a scalar result works too
    with pytest.raises(ProbeFailed, match="returns a matrix, not an instant vector"):
        probes.prometheus(prometheus_url, f"{up}[1s]")()
    with pytest.raises(ProbeFailed, match="HTTP 400: bad_data"):
        probes.prometheus(prometheus_url, "sum(")()
    dead = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(ProbeFailed, match="unreachable"):
        probes.prometheus(dead, up, timeout="200ms")()


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="is not an http:// or https:// URL"):
        probes.prometheus("localhost:9090", "up")
    with pytest.raises(ValueError, match="query must be a non-empty PromQL expression"):
        probes.prometheus("http://127.0.0.1:9090", " ")
    with pytest.raises(ValueError, match="leave no value that passes"):
        probes.prometheus("http://127.0.0.1:9090", "up", below=1, above=2)
    with pytest.raises(ValueError, match="below=inf must be a finite number"):
        probes.prometheus("http://127.0.0.1:9090", "up", below=float("inf"))
    sli = probes.prometheus("http://127.0.0.1:9090", "up")
    with pytest.raises(ValueError, match="no fault injected yet; pass start="):
        sli.import_range(Experiment("t::x"))
    with pytest.raises(ValueError, match="more than 11000 points"):
        sli.import_range(Experiment("t::x"), start=0.0, end=100_000.0, step="1s")


def test_demo_exports_prometheus_metrics(tmp_path: Path) -> None:
    pytest.importorskip(
        "prometheus_client", reason="prometheus-client is not installed (pip install prometheus-client)"
    )
    with DemoProcess("orders", "--durability", "memory", log=tmp_path / "orders.log") as orders:
        assert request(orders.url, "POST", "/orders", {"key": "a"})[0] == 201
        assert request(orders.url, "GET", "/orders/a")[0] == 200
        assert request(orders.url, "GET", "/orders/missing")[0] == 404
        assert request(orders.url, "GET", f"/no/such/{time.time()}")[0] == 404
        status, text = request(orders.url, "GET", "/metrics")
    assert status == 200
    samples = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line[:1] != "#"}
    total = 'demo_http_requests_total{{code="{}",method="{}",role="orders",route="{}"}}'
    assert samples[total.format("201", "POST", "/orders")] == 1
    assert samples[total.format("200", "GET", "/orders/{key}")] == 1  # one route for every key
    assert samples[total.format("404", "GET", "/orders/{key}")] == 1
    assert samples[total.format("404", "GET", "other")] == 1  # unknown paths never become label values
    assert samples['demo_http_request_duration_seconds_count{role="orders",route="/orders"}'] == 1
    with DemoProcess("orders", "--durability", "memory", "--no-metrics") as plain:
        assert request(plain.url, "GET", "/metrics")[0] == 404
