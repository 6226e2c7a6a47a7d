"""What one ``load()`` start costs: locust forked from the zygote against a fresh ``python -m locust``.

    python benchmarks/bench_load_start.py [--rounds 10]

For each start, in interleaved rounds (zygote, subprocess, zygote, ...) so both saw the same
machine, it prints the medians of:

* **start->init**: wall seconds from ``LoadRun.start()`` until locust's first event (the
  sink's ``init``, sent once the locustfiles are loaded): what a test waits for;
* **locust CPU**: CPU seconds the locust process used up to that event (``/proc/PID/stat``);
  a forked process does not pay for importing locust, its zygote did once;
* **zygote CPU**: CPU seconds the zygote spent per start (the fork itself), and once, what
  starting the zygote cost (printed separately; it is paid once per pytest process).

The target is a closed loopback port: the load is stopped as soon as it has started. The
machine may be shared: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_resiliency.experiment import Experiment  # noqa: E402
from pytest_resiliency.load import forkserver  # noqa: E402
from pytest_resiliency.load.run import LoadRun  # noqa: E402
from pytest_resiliency.load.spec import make_spec  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
TARGET = "http://127.0.0.1:9"  # discard port: nothing listens; the run never gets past its start


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, from /proc (it need not be our child)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def one_start(workdir: Path) -> tuple[float, float]:
    """(wall seconds start->init, locust CPU seconds by then)."""
    spec = make_spec(TARGET, users=1, rate=1)
    run = LoadRun(spec, Experiment("bench_load_start"), Path(tempfile.mkdtemp(dir=workdir)))
    t0 = time.perf_counter()
    run.start()
    wall = time.perf_counter() - t0
    master = run.master
    assert master is not None
    cpu = cpu_seconds(master.pid)
    run.stop(grace=5)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results: dict[str, list[tuple[float, float]]] = {"zygote": [], "subprocess": []}
    with tempfile.TemporaryDirectory(prefix="bench-load-start-") as tmp:
        workdir = Path(tmp)
        t0 = time.perf_counter()
        forkserver.configure(True)
        first = one_start(workdir)  # starts the zygote: its one-off cost, not counted in the rounds
        zygote = forkserver.zygote_pid()
        assert zygote is not None, "the zygote did not start"
        print(
            f"first start (zygote start included): {first[0]:.3f}s wall; "
            f"zygote start cost {cpu_seconds(zygote):.3f} CPU-s once ({time.perf_counter() - t0:.2f}s)"
        )
        zygote_before = cpu_seconds(zygote)
        for _ in range(args.rounds):
            for mode in ("zygote", "subprocess"):
                forkserver.configure(mode == "zygote")
                results[mode].append(one_start(workdir))
        per_fork = (cpu_seconds(zygote) - zygote_before) / args.rounds  # clock ticks are 10 ms: averaged
        forkserver.close()
    print(f"{args.rounds} rounds, medians per load() start:")
    print(f"{'':12}{'start->init s':>15}{'locust CPU-s':>15}{'zygote CPU-s':>15}")
    for mode, rows in results.items():
        wall, cpu = (statistics.median(column) for column in zip(*rows, strict=True))
        spent = per_fork if mode == "zygote" else 0.0
        print(f"{mode:12}{wall:>15.3f}{cpu:>15.3f}{spent:>15.3f}")
    z, s = (statistics.median(r[0] for r in results[m]) for m in ("zygote", "subprocess"))
    zc, sc = (statistics.median(r[1] for r in results[m]) for m in ("zygote", "subprocess"))
    print(f"saved per start: {s - z:.3f}s wall (x{s / z:.1f} faster), {sc - zc - per_fork:.3f} CPU-s")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
