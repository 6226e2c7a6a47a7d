"""The end-of-test work at scale: measurement time and memory, against version 0.1 side by side.

A synthetic timeline of N operations (2 000 req/s, 1 % scattered failures in the baseline,
each fault followed by a 0.5 s outage) with F faults is measured by this version and by version 0.1's
``measure.py`` (read from git, commit ced8986), alternating, in one process. Also printed:
what the timeline holds per million operations, and the whole end-of-test work (snapshot,
measurement, verdict, report payload) at the default cap of 5M operations, with its peak
memory (tracemalloc).

Usage: python benchmarks/bench_measure.py [--ops 1000000] [--faults 10] [--rounds 3] [--cap 5000000]
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import random
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from types import ModuleType
from typing import Any

from pytest_resiliency import measure, verdict
from pytest_resiliency.budget import Budget, Criteria
from pytest_resiliency.experiment import Experiment
from pytest_resiliency.report import payload
from pytest_resiliency.timeline import FaultRecord, Timeline

OLD_COMMIT = "ced8986"
RATE = 2000.0


def old_measure() -> ModuleType | None:
    """Version 0.1's measure.py, imported beside this one (None outside a git checkout)."""
    root = Path(__file__).resolve().parent.parent
    try:
        text = subprocess.run(
            ["git", "show", f"{OLD_COMMIT}:pytest_resiliency/measure.py"],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp()) / "measure_v01.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("pytest_resiliency._measure_v01", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def fill(timeline: Timeline, ops: int, faults: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    t0 = 1.7e9
    span = ops / RATE
    outages = []
    for f in range(faults):
        at = t0 + (f + 0.5) * span / faults
        timeline.fault_injected(FaultRecord("custom", f"f{f}", "", {}, None, at, at + 0.2))
        outages.append((at, at + 0.5))
    rows: list[tuple[float, float, bool, str, str, str | None]] = []
    k = 0
    for i in range(ops):
        t = t0 + i / RATE
        while k < len(outages) and t >= outages[k][1]:
            k += 1
        down = k < len(outages) and outages[k][0] <= t
        ok = not down and (k > 0 or rng.random() > 0.01)
        rows.append((t, 0.001 + rng.random() * 0.004, ok, "GET /", "load", None if ok else "HTTP 503"))
        if len(rows) == 10_000:
            timeline.add_operations(rows)
            rows = []
    timeline.add_operations(rows)


def median_time(fn: Any, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        gc.collect()
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def compare(ops: int, faults: int, rounds: int, criteria: Criteria) -> None:
    """This version against version 0.1 on one timeline, alternating; then 1 vs F faults."""
    timeline = Timeline(ops + 1)
    tracemalloc.start()
    fill(timeline, ops, faults)
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    print(f"timeline: {held / 1e6 * 1_000_000 / ops:.1f} MB per 1M operations (tracemalloc)")
    evidence = timeline.snapshot()
    new = measure.measure(evidence, criteria)
    print(f"measure(), {ops:,} operations, {faults} faults: status {new.status}, RTO {new.rto:.4f} s")
    now = median_time(lambda: measure.measure(evidence, criteria), rounds)
    old = old_measure()
    if old is not None:
        assert old.measure(evidence, criteria).status == new.status
        before = median_time(lambda: old.measure(evidence, criteria), rounds)
        print(f"  this version {now:.3f} s, version 0.1 {before:.3f} s: x{before / now:.1f} faster")
    else:
        print(f"  this version {now:.3f} s (version 0.1 needs a git checkout)")
    for count in (1, faults):
        tl = Timeline(ops + 1)
        fill(tl, ops, count)
        ev = tl.snapshot()
        print(f"  {count:>2} fault(s): {median_time(lambda ev=ev: measure.measure(ev, criteria), rounds):.3f} s")


def end_of_test(cap: int, faults: int, criteria: Criteria) -> None:
    """Snapshot, measurement, verdict and report payload at the cap: time, then peak memory."""
    exp = Experiment("bench", Budget(rto=5.0), criteria, max_operations=cap)
    fill(exp.timeline, cap, faults)

    def work() -> None:
        m = exp.measure()
        v = verdict.judge(m, exp.budget)
        payload.build(exp, m, v, payload.PASS if v.passed else payload.BREACH, [])

    work()  # imports (numpy) happen once per process, not per test
    elapsed = median_time(work, 3)
    gc.collect()
    tracemalloc.start()
    work()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"end of test at the {cap:,}-operation cap: {elapsed:.2f} s, peak +{peak / 1e6:.0f} MB (tracemalloc)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1_000_000)
    parser.add_argument("--faults", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cap", type=int, default=5_000_000)
    args = parser.parse_args()
    criteria = Criteria(successes=5, window=1.0, timeout=60.0)
    compare(args.ops, args.faults, args.rounds, criteria)
    gc.collect()
    end_of_test(args.cap, args.faults, criteria)


if __name__ == "__main__":
    main()
