"""RTO accuracy: measured minus true outage, through experiment.monitor and naive polling.

A ground-truth server is broken for exactly D ms (503 or refused connections); the truth is
the time from ``t_inject`` to the repair. Each method measures the same kind of outage:

* ``monitor 20ms``: ``experiment.monitor(probes.http(url), every="20ms")`` and the plugin's
  measurement (target: |error| <= 40 ms);
* ``locust N rps``: the ``load`` controller at N requests/s (target at 200 rps: <= 25 ms);
* ``naive 1s``: what a team writes without this tool: tenacity polling health once a second
  after the fault, RTO = first healthy poll - t_inject.

Then closed-loop clients, where evidence is sparse around recovery (``--closed-runs``):

* ``1 blocking client, 1s timeout`` and ``5 blocking clients, 1s timeout`` against a server
  that holds every request during the outage (``mode="hang"``: a paused process, an
  election) and answers them at the repair;
* ``user locustfile, 10 users started together``: ``constant_throughput(20)`` users spawned
  at once, so requests come in bursts every 50 ms, against a 503 outage.

For those it prints how often the reported bracket contains the true recovery and the
judged RTO is not below the truth (both must be 100 %), the error and the uncertainty.

Usage: python benchmarks/bench_rto_accuracy.py [--runs 10] [--mode 503|refuse] [--outages 100,500,2000]
       [--closed-runs 10] [--closed-outage 2000] [--no-open] [--no-locust]
"""

from __future__ import annotations

import argparse
import http.client
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _stats import mmm
from ground_truth import GroundTruthServer
from tenacity import retry, stop_after_delay, wait_fixed

from pytest_resiliency import faults, probes
from pytest_resiliency.budget import Criteria
from pytest_resiliency.experiment import Experiment

CRITERIA = Criteria(successes=5, window=0.3, timeout=30.0)


def _wait(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("no steady evidence before the fault")
        time.sleep(0.005)


def _outage(exp: Experiment, server: GroundTruthServer, seconds: float) -> Any:
    """Break the server for ``seconds`` through a fault, repair it, and wait for the evidence of recovery."""
    fault = exp.inject(faults.custom(server.break_, server.fix, name="outage"))
    time.sleep(seconds)  # the outage's length is the experiment's input, not a synchronisation
    fault.revert()
    exp.wait_recovered(timeout=10)
    return fault


def run_monitor(server: GroundTruthServer, outage: float) -> float:
    exp = Experiment("bench", criteria=CRITERIA)
    exp.monitor(probes.http(server.url + "/health", timeout=0.5), every="20ms")
    _wait(lambda: exp.timeline.recovery_state().successes >= 5)
    fault = _outage(exp, server, outage)
    exp.finish(settle=False)
    rto = exp.measure().rto
    assert rto is not None and fault.record is not None and fault.record.reverted_at is not None
    return float(rto - (fault.record.reverted_at - fault.record.injected_at))


def run_locust(server: GroundTruthServer, outage: float, rate: int) -> float:
    """The same outage seen by the load: locust out of process at ``rate`` requests/s."""
    from pytest_resiliency.load.controller import Traffic
    from pytest_resiliency.load.spec import make_spec

    exp = Experiment("bench", criteria=CRITERIA)
    with tempfile.TemporaryDirectory() as workdir:
        traffic = Traffic(make_spec(server.url, users=max(1, rate // 25), rate=rate, writes=0), exp, Path(workdir))
        exp.add_source(traffic)
        try:
            traffic.start().wait_steady()
            fault = _outage(exp, server, outage)
        finally:
            exp.finish(settle=False)
    rto = exp.measure(source="load").rto
    assert rto is not None and fault.record is not None and fault.record.reverted_at is not None
    return float(rto - (fault.record.reverted_at - fault.record.injected_at))


def run_naive(server: GroundTruthServer, outage: float) -> float:
    """Poll health every second with tenacity after injecting; the first success ends the outage."""
    check = probes.http(server.url + "/health", timeout=0.5)
    _wait(lambda: probes.run_once(check)[2])
    t_inject = time.time()
    server.break_()
    repaired: list[float] = []

    def repair() -> None:
        server.fix()
        repaired.append(time.time())

    timer = threading.Timer(outage, repair)
    timer.start()

    @retry(wait=wait_fixed(1), stop=stop_after_delay(30), reraise=True)
    def healthy() -> None:
        check()

    healthy()
    measured = time.time() - t_inject
    timer.join()
    return measured - (repaired[0] - t_inject)


BURST_LOCUSTFILE = """
from locust import HttpUser, constant_throughput, task


class Burst(HttpUser):
    wait_time = constant_throughput(20)

    @task
    def health(self):
        self.client.get("/health")
"""


Closed = tuple[float, bool, float, float]


def _send_time_rto(exp: Experiment, source: str, t_inject: float) -> float:
    """The rule of version 0.1, for comparison: recovery dated at the *send* time of the first
    success after the last failure sent at or after ``t_inject`` (0 when none failed)."""
    ev = exp.timeline.snapshot()
    ident = ev.strings.index(source)
    ops = sorted((s, ok) for s, ok, src in zip(ev.op_start, ev.op_ok, ev.op_source, strict=True) if src == ident)
    fails = [s for s, ok in ops if not ok and s >= t_inject]
    if not fails:
        return 0.0
    return float(min(s for s, ok in ops if ok and s > max(fails)) - t_inject)


def _closed_result(exp: Experiment, server: GroundTruthServer, source: str) -> Closed:
    """(judged RTO - truth, bracket contains the truth and RTO >= truth, uncertainty, old rule - truth)."""
    fault = exp.faults[0]
    assert fault.record is not None and server.repaired_at is not None
    measurement = exp.measure(source=source)
    worst = measurement.worst
    assert worst is not None and measurement.rto is not None, measurement.status
    truth = server.repaired_at - fault.record.injected_at
    assert worst.recovery_from is not None and worst.t_recovered is not None and worst.uncertainty is not None
    honest = worst.recovery_from <= server.repaired_at <= worst.t_recovered and measurement.rto >= truth
    old = _send_time_rto(exp, source, fault.record.injected_at)
    return measurement.rto - truth, honest, worst.uncertainty, old - truth


def run_blocking(server: GroundTruthServer, outage: float, clients: int, timeout: float) -> Closed:
    """``clients`` threads, each sending its next request when the last one ends (closed loop)."""
    exp = Experiment("bench", criteria=CRITERIA)
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
            start = time.time()
            try:
                conn.request("GET", "/health")
                ok, error = conn.getresponse().status == 200, None
            except OSError as exc:
                ok, error = False, type(exc).__name__
            finally:
                conn.close()
            exp.record_operation(start, time.time() - start, ok, "GET /health", "client", error)
            if not ok:
                stop.wait(0.01)  # a refused connection fails at once: do not spin

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        _wait(lambda: exp.timeline.recovery_state().successes >= 5)
        _outage(exp, server, outage)
    finally:
        stop.set()
        server.repaired.set()
        for thread in threads:
            thread.join(timeout + 1)
    return _closed_result(exp, server, "client")


def run_burst_locustfile(server: GroundTruthServer, outage: float) -> Closed:
    """A user's locustfile whose 10 users start together: requests in bursts every 50 ms."""
    from pytest_resiliency.load.controller import Traffic
    from pytest_resiliency.load.spec import make_spec

    exp = Experiment("bench", criteria=CRITERIA)
    with tempfile.TemporaryDirectory() as workdir:
        locustfile = Path(workdir) / "burst.py"
        locustfile.write_text(BURST_LOCUSTFILE)
        spec = make_spec(server.url, users=10, locustfile=locustfile, spawn_rate=1000)
        traffic = Traffic(spec, exp, Path(workdir))
        exp.add_source(traffic)
        try:
            traffic.start().wait_steady()
            _outage(exp, server, outage)
        finally:
            exp.finish(settle=False)
    return _closed_result(exp, server, "load")


def closed_loop(runs: int, outage_ms: int, with_locust: bool) -> None:
    scenarios: dict[str, tuple[str, Callable[[GroundTruthServer, float], Closed]]] = {
        "1 blocking client, 1s timeout": ("hang", lambda s, d: run_blocking(s, d, 1, 1.0)),
        "5 blocking clients, 1s timeout": ("hang", lambda s, d: run_blocking(s, d, 5, 1.0)),
    }
    if with_locust:
        scenarios["user locustfile, 10 users at once"] = ("503", run_burst_locustfile)
    print(f"\nclosed loop, outage D={outage_ms}ms, {runs} runs: judged RTO - truth and uncertainty, ms")
    head = ("scenario", "bracket ok", "RTO - truth", "uncertainty", "send-time rule - truth")
    print(f"{head[0]:<36} {head[1]:>10} {head[2]:>28} {head[3]:>30} {head[4]:>30}")
    for name, (mode, method) in scenarios.items():
        errors, widths, olds, honest = [], [], [], 0
        for _ in range(runs):
            server = GroundTruthServer(mode)
            try:
                error, ok, width, old = method(server, outage_ms / 1000)
            finally:
                server.close()
            errors.append(error)
            widths.append(width)
            olds.append(old)
            honest += ok
        cells = (f"{honest}/{runs}", mmm(errors, 1000, "ms"), mmm(widths, 1000, "ms"), mmm(olds, 1000, "ms"))
        print(f"{name:<36} {cells[0]:>10} {cells[1]:>28} {cells[2]:>30} {cells[3]:>30}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--mode", choices=("503", "refuse"), default="503")
    parser.add_argument("--outages", default="100,500,2000", help="outage lengths in ms")
    parser.add_argument("--no-locust", action="store_true")
    parser.add_argument("--no-open", action="store_true", help="only the closed-loop scenarios")
    parser.add_argument("--closed-runs", type=int, default=10, help="runs per closed-loop scenario (0: none)")
    parser.add_argument("--closed-outage", type=int, default=2000, help="closed-loop outage length in ms")
    args = parser.parse_args()
    if not args.no_open:
        open_loop(args)
    if args.closed_runs:
        closed_loop(args.closed_runs, args.closed_outage, not args.no_locust)


def open_loop(args: argparse.Namespace) -> None:
    methods: dict[str, Callable[[GroundTruthServer, float], float]] = {"monitor 20ms": run_monitor}
    if not args.no_locust:
        methods["locust 50rps"] = lambda s, d: run_locust(s, d, 50)
        methods["locust 200rps"] = lambda s, d: run_locust(s, d, 200)
    methods["naive tenacity 1s"] = run_naive
    print(f"RTO error = measured - truth, ms, median [min .. max] over {args.runs} runs, mode {args.mode}")
    print(f"{'method':<20} " + " ".join(f"{'D=' + d + 'ms':>28}" for d in args.outages.split(",")))
    for name, method in methods.items():
        cells = []
        for outage_ms in (int(d) for d in args.outages.split(",")):
            errors = []
            for _ in range(args.runs):
                server = GroundTruthServer(args.mode)
                try:
                    errors.append(method(server, outage_ms / 1000))
                finally:
                    server.close()
            cells.append(mmm(errors, 1000, "ms"))
        print(f"{name:<20} " + " ".join(f"{c:>28}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
