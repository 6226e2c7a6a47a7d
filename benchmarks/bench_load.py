"""Load pipeline benchmarks: ingest rate, the sink's cost inside locust, memory for 1M requests.

    python benchmarks/bench_load.py [--requests 1000000] [--seconds 8] [--users 20]

Prints three figures (targets from the load brief):

* events/s the pytest side ingests (parse + timeline), target >= 20,000/s;
* locust requests/s and locust CPU per request with and without the sink, side by side
  against the same loopback server, target: the sink costs < 10%;
* pytest-process memory (RSS growth) for 1M requests with 30% writes, target < 200 MB.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from load_servers import OrdersServer  # noqa: E402

from pytest_resiliency.load.ingest import Ingest  # noqa: E402
from pytest_resiliency.load.records import request_record, write_record  # noqa: E402
from pytest_resiliency.load.spec import HTTP_LOCUSTFILE, SINK_LOCUSTFILE  # noqa: E402
from pytest_resiliency.timeline import Timeline  # noqa: E402

SEP = (",", ":")


def synthetic_stream(requests: int, writes: float = 0.3, batch: int = 10_000) -> Iterator[bytes]:
    """What the sink writes for ``requests`` requests, batch by batch (never all in memory at once)."""
    rng = random.Random(1)
    t = time.time()
    names = ["GET /orders/{key}", "POST /orders"]
    lines: list[str] = []
    for i in range(requests):
        t += 0.005
        ok = rng.random() > 0.01
        is_write = rng.random() < writes
        error = None if ok else "ConnectionRefusedError"
        lines.append(
            json.dumps(request_record(t, rng.uniform(0.001, 0.02), ok, names[is_write], error), separators=SEP)
        )
        if is_write:
            write = write_record(f"run-abc123-{i}", t, t + 0.004, "ok" if ok else "fail")
            lines.append(json.dumps(write, separators=SEP))
        if len(lines) >= batch:
            yield ("\n".join(lines) + "\n").encode()
            lines = []
    if lines:
        yield ("\n".join(lines) + "\n").encode()


def bench_ingest(requests: int) -> None:
    gc.collect()
    process = psutil.Process()
    rss_before = process.memory_info().rss
    timeline = Timeline(max_operations=requests + 1)
    ingest = Ingest(timeline)
    elapsed = 0.0
    for chunk in synthetic_stream(requests):
        began = time.perf_counter()
        ingest.feed(chunk)
        elapsed += time.perf_counter() - began
    records = ingest.requests + sum(ingest.writes.values())
    gc.collect()
    rss_after = process.memory_info().rss
    print(f"ingest: {ingest.requests:,} requests + {sum(ingest.writes.values()):,} writes in {elapsed:.2f}s")
    print(f"  -> {records / elapsed:,.0f} events/s ({ingest.requests / elapsed:,.0f} requests/s)   target >= 20,000/s")
    grown = (rss_after - rss_before) / 2**20
    print(f"memory: timeline of {ingest.requests:,} requests: RSS +{grown:.0f} MB   target < 200 MB")


def run_locust(url: str, files: list[Path], seconds: int, users: int, workdir: Path) -> tuple[float, float]:
    """(requests/s, locust CPU microseconds per request) for one headless run."""
    json_file = workdir / f"stats-{len(files)}"
    events = workdir / "events.jsonl"
    env = {**os.environ, "RESILIENCY_EVENTS": str(events), "PYTHONPATH": str(ROOT)}
    scenario = json.dumps({"rate": 1e6, "writes": 0.3, "users": users, "single": True})
    cmd = [sys.executable, "-m", "locust", "-f", ",".join(map(str, files)), "--headless", "-u", str(users)]
    cmd += ["-r", str(users), "-H", url, "-t", f"{seconds}s", "--only-summary", "--exit-code-on-error", "0"]
    cmd += ["--json-file", str(json_file), "--resiliency-scenario", scenario, "-L", "WARNING"]
    proc = subprocess.Popen(cmd, env=env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ps = psutil.Process(proc.pid)
    cpu = 0.0
    while proc.poll() is None:
        try:
            times = ps.cpu_times()
            cpu = times.user + times.system
        except psutil.Error:
            break
        time.sleep(0.1)
    stats = json.loads(json_file.with_name(json_file.name + ".json").read_text())
    total = sum(int(e["num_requests"]) for e in stats)
    span = max(float(e["last_request_timestamp"]) for e in stats) - min(float(e["start_time"]) for e in stats)
    if events.exists():
        events.unlink()
    return total / span, cpu / total * 1e6


def bench_sink(seconds: int, users: int) -> None:
    server = OrdersServer()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        without = run_locust(server.url, [HTTP_LOCUSTFILE], seconds, users, workdir)
        with_sink = run_locust(server.url, [SINK_LOCUSTFILE, HTTP_LOCUSTFILE], seconds, users, workdir)
    server.close()
    print(f"locust ({users} users, unpaced, {seconds}s, loopback orders server):")
    print(f"  without sink: {without[0]:8,.0f} req/s  {without[1]:6.0f} us CPU/request")
    print(f"  with sink:    {with_sink[0]:8,.0f} req/s  {with_sink[1]:6.0f} us CPU/request")
    print(
        f"  sink cost: {100 * (1 - with_sink[0] / without[0]):+.1f}% rate, "
        f"{100 * (with_sink[1] / without[1] - 1):+.1f}% CPU per request   target < 10%"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--users", type=int, default=20)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    bench_ingest(args.requests)
    bench_sink(args.seconds, args.users)


if __name__ == "__main__":
    main()
