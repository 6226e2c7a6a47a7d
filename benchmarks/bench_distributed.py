"""Distributed load: clock-offset correction against the server's clock, and how fast a lost worker is reported.

    sudo python benchmarks/bench_distributed.py [--offsets -0.8,-0.2,0,0.3,0.9] [--kills 3]

Needs root (load hosts are network namespaces joined by veth pairs, see tests/load_hosts.py).

* **Clock offsets.** For each injected offset (``RESILIENCY_TEST_CLOCK_OFFSET`` on a worker in
  its own namespace) the orders server notes when each write arrived, by the pytest host's
  clock: independent truth. Printed: the measured offset's error and its uncertainty; the
  share of acknowledged writes whose arrival lies inside ``[start - u, ack + u]`` after
  correction (must be 100%), and the same without correction (what skew would do).
* **Lost workers.** Two workers in two namespaces; one (then both) SIGKILLed after the load is
  steady. Printed: seconds from the kill to the error naming it.
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from load_hosts import LoadHost, TimedOrders, make_hosts, unavailable  # noqa: E402

from pytest_resiliency.experiment import Experiment  # noqa: E402
from pytest_resiliency.load.records import CLOCK_OFFSET_ENV  # noqa: E402
from pytest_resiliency.load.run import LoadRun  # noqa: E402
from pytest_resiliency.load.spec import make_spec  # noqa: E402


def _start(url: str, workdir: Path, **options: Any) -> tuple[LoadRun, Experiment]:
    experiment = Experiment("bench_distributed")
    spec = make_spec(url, max_clock_skew=1.0, master_port=0, **options)
    return LoadRun(spec, experiment, Path(tempfile.mkdtemp(dir=workdir)), start_timeout=30).start(), experiment


def clock_run(host: LoadHost, offset: float, workdir: Path, seconds: float) -> dict[str, float]:
    server = TimedOrders(host.host_ip)
    try:
        traffic, experiment = _start(
            server.url, workdir, users=4, rate=100, writes=0.5, remote_workers=1, master_bind_host=host.host_ip
        )
        host.worker(host.host_ip, traffic.master_port, "load-a", workdir / "w.log", **{CLOCK_OFFSET_ENV: str(offset)})
        traffic.wait_steady(timeout="30s")
        end = time.monotonic() + seconds
        traffic.ingest.wait(lambda: time.monotonic() >= end or traffic.died is not None, seconds + 1)
        traffic.stop()
        host.kill()
    finally:
        server.close()
    clock = traffic.clocks["load-a"]
    u = traffic.clock_uncertainty
    evidence = experiment.timeline.snapshot()
    inside = raw_inside = total = 0
    for key, start, ack in zip(evidence.write_keys, evidence.write_start, evidence.write_ack, strict=True):
        if key not in server.received or math.isnan(ack):
            continue
        arrived = server.received[key]
        total += 1
        inside += start - u <= arrived <= ack + u
        raw_inside += start + offset - u <= arrived <= ack + offset + u  # the worker's own clock
    return {
        "error_ms": (clock["offset_s"] - offset) * 1000,
        "uncertainty_ms": clock["uncertainty_s"] * 1000,
        "max_uncertainty_ms": u * 1000,
        "writes": total,
        "inside": 100 * inside / total if total else float("nan"),
        "raw_inside": 100 * raw_inside / total if total else float("nan"),
    }


def kill_run(a: LoadHost, b: LoadHost, workdir: Path, both: bool) -> float:
    server = TimedOrders(a.host_ip)
    try:
        traffic, _ = _start(
            server.url, workdir, users=4, rate=80, remote_workers=["load-a", "load-b"], master_bind_host=a.host_ip
        )
        a.worker(a.host_ip, traffic.master_port, "load-a", workdir / "a.log")
        b.worker(a.host_ip, traffic.master_port, "load-b", workdir / "b.log")
        traffic.wait_steady(timeout="30s")
        began = time.monotonic()
        b.kill()
        if both:
            a.kill()
        traffic.ingest.wait(lambda: traffic.died is not None, 30)
        elapsed = time.monotonic() - began
        traffic.stop()
        a.kill()
        return elapsed
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--offsets", default="-0.8,-0.2,0,0.3,0.9", help="injected clock offsets, seconds")
    parser.add_argument("--seconds", type=float, default=4.0, help="load per offset after steady")
    parser.add_argument("--kills", type=int, default=3, help="rounds of each kill scenario")
    args = parser.parse_args()
    reason = unavailable()
    if reason:
        sys.exit(f"bench_distributed: {reason}")
    workdir = Path(tempfile.mkdtemp(prefix="bench-distributed-"))
    made: list[LoadHost] = []
    try:
        (host,) = make_hosts(1, made)
        print("clock offset correction (worker in a namespace, veth link; truth: the server's arrival times)")
        print(f"{'injected':>9} {'error':>9} {'±applied':>9} {'max ±':>8} {'writes':>6} {'inside':>7} {'uncorr.':>8}")
        for offset in [float(x) for x in args.offsets.split(",")]:
            r = clock_run(host, offset, workdir, args.seconds)
            print(
                f"{offset:>8.3f}s {r['error_ms']:>7.3f}ms {r['uncertainty_ms']:>7.3f}ms "
                f"{r['max_uncertainty_ms']:>6.3f}ms {r['writes']:>6} {r['inside']:>6.1f}% {r['raw_inside']:>7.1f}%"
            )
        a, b = make_hosts(2, made)
        for both in (False, True):
            times = [kill_run(a, b, workdir, both) for _ in range(args.kills)]
            label = "both workers killed" if both else "one of two workers killed"
            print(
                f"{label}: reported after {statistics.median(times):.2f}s median "
                f"({min(times):.2f}-{max(times):.2f}s, {len(times)} runs; missing_after=3s)"
            )
    finally:
        for h in made:
            h.remove()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
