"""RTO accuracy: measured minus true outage, through experiment.monitor and naive polling.

A ground-truth server is broken for exactly D ms (503 or refused connections); the truth is
the time from ``t_inject`` to the repair. Each method measures the same kind of outage:

* ``monitor 20ms``: ``experiment.monitor(probes.http(url), every="20ms")`` and the plugin's
  measurement (target: |error| <= 40 ms);
* ``locust N rps``: the ``load`` controller at N requests/s (target at 200 rps: <= 25 ms);
* ``naive 1s``: what a team writes without this tool: tenacity polling health once a second
  after the fault, RTO = first healthy poll - t_inject.

Usage: python benchmarks/bench_rto_accuracy.py [--runs 10] [--mode 503|refuse] [--outages 100,500,2000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

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


def run_monitor(server: GroundTruthServer, outage: float) -> float:
    exp = Experiment("bench", criteria=CRITERIA)
    exp.monitor(probes.http(server.url + "/health", timeout=0.5), every="20ms")
    _wait(lambda: exp.timeline.recovery_state().successes >= 5)
    fault = exp.inject(faults.custom(server.break_, server.fix, name="outage"))
    time.sleep(outage)
    fault.revert()
    exp.wait_recovered(timeout=10)
    exp.finish(settle=False)
    rto = exp.measure().rto
    assert rto is not None and fault.record is not None and fault.record.reverted_at is not None
    return rto - (fault.record.reverted_at - fault.record.injected_at)


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
            fault = exp.inject(faults.custom(server.break_, server.fix, name="outage"))
            time.sleep(outage)
            fault.revert()
            exp.wait_recovered(timeout=10)
        finally:
            exp.finish(settle=False)
    rto = exp.measure(source="load").rto
    assert rto is not None and fault.record is not None and fault.record.reverted_at is not None
    return rto - (fault.record.reverted_at - fault.record.injected_at)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--mode", choices=("503", "refuse"), default="503")
    parser.add_argument("--outages", default="100,500,2000", help="outage lengths in ms")
    parser.add_argument("--no-locust", action="store_true")
    args = parser.parse_args()
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
