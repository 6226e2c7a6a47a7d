"""Scaling: the example suite (the main job) serial vs ``-n 2``, wall time, same machine, one run each.

Usage: python benchmarks/bench_scaling.py [--rounds 1] [-- extra pytest args]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(extra: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "resiliency_tests", "-q", "-p", "no:cacheprovider", *extra],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return time.perf_counter() - start, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    args, extra = parser.parse_known_args()
    serial, parallel = [], []
    for _ in range(args.rounds):
        seconds, rc = run(extra)
        serial.append(seconds)
        print(f"serial  {seconds:6.1f}s (exit {rc})", flush=True)
        seconds, rc = run(["-n", "2", *extra])
        parallel.append(seconds)
        print(f"-n 2    {seconds:6.1f}s (exit {rc})", flush=True)
    print(
        f"median serial {statistics.median(serial):.1f}s, -n 2 {statistics.median(parallel):.1f}s, "
        f"speed-up x{statistics.median(serial) / statistics.median(parallel):.2f}"
    )


if __name__ == "__main__":
    main()
