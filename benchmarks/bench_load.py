"""Load pipeline benchmarks: the ingest, and the load fixture against plain locust, side by side.

    python benchmarks/bench_load.py [--rounds 3] [--seconds 6] [--users 20] [--requests 1000000]
                                    [--skip-ingest] [--skip-locust]

Prints (targets from issue 17):

* **ingest**: events/s the pytest side parses into the timeline (target >= 20,000/s), and the
  pytest process's memory for 1M requests with 30 % writes (target < 200 MB);
* against one fast loopback server (HAProxy answering from memory, one thread), in
  ``--rounds`` interleaved rounds so every figure of a round saw the same machine:

  - **built-in / plain**: requests/s of the ``load`` fixture's built-in scenario (started the
    way the fixture starts it: sink, pacing, ledger, ingest into a timeline) over plain
    ``locust`` with a minimal ``FastHttpUser`` (no sink, no pacing), target >= 0.8;
  - **workers=2 / one process**: the built-in scenario with ``workers=2`` over one process,
    target >= 1.5; printed next to the same ratio for two *plain* locust processes, which is
    what the machine itself allows at that moment, with the cores the runs were granted (a
    shared machine grants less than two), and with what ``workers=2`` costs per request (one
    process and ``workers=2`` together on one CPU);
  - **sink + ingest**: CPU per request of locust with the sink plus the pytest-side ingest of
    its events, over locust running the same scenario without the sink, target <= +5 %.

Medians over the rounds; each round's ratios are printed as well. The machine may be shared:
the load average is printed before and after. Every locust process runs in its own session, as
the fixture starts them: with the kernel's autogroup scheduling a session is one scheduling
group, so a process started otherwise would get a different share of the CPU.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_resiliency.experiment import Experiment  # noqa: E402
from pytest_resiliency.load.ingest import Ingest  # noqa: E402
from pytest_resiliency.load.records import encode_frame, request_record, write_record  # noqa: E402
from pytest_resiliency.load.run import LoadRun  # noqa: E402
from pytest_resiliency.load.spec import HTTP_LOCUSTFILE, SINK_LOCUSTFILE, make_spec  # noqa: E402
from pytest_resiliency.timeline import Timeline  # noqa: E402

UNPACED = 1e6  # requests/s asked of the built-in scenario: every user sends as fast as it can

PLAIN_LOCUSTFILE = """
import itertools
import random

from locust import FastHttpUser, constant, task

_keys = itertools.count()


class Plain(FastHttpUser):
    wait_time = constant(0)

    @task
    def step(self):
        if random.random() < 0.3:
            self.client.post("/orders", json={"key": f"plain-{next(_keys)}"})
        else:
            self.client.get("/orders/plain-1", name="/orders/{key}")
"""

HAPROXY_CONFIG = """
global
    nbthread 1
    maxconn 2000
defaults
    mode http
    timeout client 30s
    timeout connect 5s
    timeout server 30s
frontend orders
    bind 127.0.0.1:{port}
    http-request return status 201 content-type application/json string "{{}}" if METH_POST
    http-request return status 200 content-type application/json string "{{}}"
"""


# -- ingest ----------------------------------------------------------------------------


def synthetic_stream(requests: int, writes: float = 0.3, batch: int = 2000) -> Iterator[bytes]:
    """What the sink writes for ``requests`` requests, frame by frame (never all in memory at once)."""
    rng = random.Random(1)
    t = time.time()
    names = ["GET /orders/{key}", "POST /orders"]
    records: list[list[Any]] = []
    for i in range(requests):
        t += 0.005
        ok = rng.random() > 0.01
        is_write = rng.random() < writes
        error = None if ok else "ConnectionRefusedError"
        records.append(request_record(t, rng.uniform(0.001, 0.02), ok, names[is_write], error))
        if is_write:
            records.append(write_record(f"run-abc123-{i}", t, t + 0.004, "ok" if ok else "fail"))
        if len(records) >= batch:
            yield encode_frame(records)
            records = []
    if records:
        yield encode_frame(records)


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


# -- the fast server ---------------------------------------------------------------------


class Haproxy:
    """HAProxy answering the orders convention from memory: far cheaper per request than any locust."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not os.path.exists(binary):
            raise SystemExit("bench_load: needs haproxy (Debian package 'haproxy') as the fast loopback server")
        port = _free_port()
        config = workdir / "haproxy.cfg"
        config.write_text(HAPROXY_CONFIG.format(port=port))
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([binary, "-db", "-f", str(config)], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not _answers(port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit("bench_load: haproxy did not start")
            time.sleep(0.05)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    import http.client

    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", "/")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


# -- runs ----------------------------------------------------------------------------------


def _cpu(pids: list[int], seen: dict[int, float]) -> None:
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        seen[pid] = times.user + times.system


def _rate(json_file: Path) -> tuple[float, int]:
    """(requests/s, requests) from locust's own ``--json-file`` stats: the same yardstick for every run."""

    entries = json.loads(json_file.read_text())
    total = sum(int(e["num_requests"]) for e in entries)
    span = max(float(e["last_request_timestamp"]) for e in entries) - min(float(e["start_time"]) for e in entries)
    return total / span, total


def _per_second(json_file: Path) -> dict[int, int]:
    """Requests started in each whole second, from locust's stats."""
    counts: dict[int, int] = {}
    for entry in json.loads(json_file.read_text()):
        for second, n in entry["num_reqs_per_sec"].items():
            counts[int(second)] = counts.get(int(second), 0) + int(n)
    return counts


def _inner_seconds(*json_files: Path) -> list[int]:
    """The whole seconds when every run was under way, without each run's partial first and last second."""
    shared = set.intersection(*(set(_per_second(f)) for f in json_files))
    inner = sorted(t for t in shared if t - 1 in shared and t + 1 in shared)
    if not inner:
        raise SystemExit("bench_load: the runs did not overlap for whole seconds; use a longer --seconds")
    return inner


def _cpu_between(samples: list[tuple[float, float]], start: float, end: float) -> float:
    """CPU seconds spent between two instants, interpolated from (time, cumulative CPU) samples."""

    def at(t: float) -> float:
        before = [s for s in samples if s[0] <= t] or samples[:1]
        after = [s for s in samples if s[0] >= t] or samples[-1:]
        (t0, c0), (t1, c1) = before[-1], after[0]
        return c0 if t1 == t0 else c0 + (c1 - c0) * (t - t0) / (t1 - t0)

    return at(end) - at(start)


class PlainRun:
    """One headless ``locust`` process started directly (no controller), optionally with the sink's events file."""

    def __init__(self, url: str, files: list[Path], seconds: int, users: int, workdir: Path, events: bool = False):

        self.out = Path(tempfile.mkdtemp(dir=workdir))
        self.events = self.out / "events.bin" if events else None
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        if self.events is not None:
            env["RESILIENCY_EVENTS"] = str(self.events)
        cmd = [sys.executable, "-m", "locust", "-f", ",".join(map(str, files)), "--headless", "-u", str(users)]
        cmd += ["-r", str(users), "-H", url, "-t", f"{seconds}s", "--only-summary", "--exit-code-on-error", "0"]
        cmd += ["--json-file", str(self.out / "stats"), "-L", "WARNING"]
        if HTTP_LOCUSTFILE in files:
            scenario = {"rate": UNPACED / users, "writes": 0.3, "users": users, "single": True}
            cmd += ["--resiliency-scenario", json.dumps(scenario)]
        # Its own session, as the fixture starts locust: with the kernel's autogroup scheduling a
        # session is one scheduling group, so both kinds of run get the same share of a CPU.
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=self.out, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )

    @property
    def pids(self) -> list[int]:
        return [self.proc.pid]

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def finish(self) -> Path:
        self.proc.wait()
        return self.out / "stats.json"

    def ingest_cpu(self) -> float:
        """CPU seconds the pytest side spends parsing this run's events into a timeline."""
        assert self.events is not None
        ingest = Ingest(Timeline(max_operations=10**8))
        began = time.process_time()
        with self.events.open("rb") as f:
            while chunk := f.read(1 << 20):
                ingest.feed(chunk)
        return time.process_time() - began


class FixtureRun:
    """The built-in scenario started the way the ``load`` fixture starts it (sink, ingest into a timeline)."""

    def __init__(self, url: str, seconds: int, users: int, workdir: Path, workers: int = 0) -> None:
        spec = make_spec(url, users=users, rate=UNPACED, writes=0.3, workers=workers, duration=seconds)
        self.run = LoadRun(spec, Experiment("bench_load"), Path(tempfile.mkdtemp(dir=workdir)), start_timeout=60)
        self.run.start()

    @property
    def pids(self) -> list[int]:
        return self.run.pids

    @property
    def running(self) -> bool:
        return self.run.running

    def finish(self) -> Path:
        while self.run.running:  # duration= ends it; stop() then drains the events into the timeline
            time.sleep(0.05)
        self.run.stop()
        json_file = self.run.json_path.with_name(self.run.json_path.name + ".json")
        _, total = _rate(json_file)
        assert self.run.ingest.requests >= 0.99 * total, "every request reached the timeline"
        return json_file


def side_by_side(*runs: PlainRun | FixtureRun, pin: int | None = None) -> list[tuple[float, float]]:
    """Runs already started, sampled until all end: per run (requests/s, CPU us per request).

    Both over the whole seconds when every run was under way (locust's per-second counts, CPU
    samples every 0.1 s): steady state, without any process's start-up or shut-down.

    ``pin``: the runs' locust processes share that one CPU, so each gets the same share of the
    same core, whatever else the machine runs: their rates compare their cost per request.
    """
    if pin is not None:
        for run in runs:
            for pid in run.pids:
                os.sched_setaffinity(pid, {pin})
    seen: list[dict[int, float]] = [{} for _ in runs]
    samples: list[list[tuple[float, float]]] = [[] for _ in runs]
    while any(r.running for r in runs):
        for run, cpu, series in zip(runs, seen, samples, strict=True):
            _cpu(run.pids, cpu)
            series.append((time.time(), sum(cpu.values())))
        time.sleep(0.1)
    files = [run.finish() for run in runs]
    inner = _inner_seconds(*files)
    results = []
    for json_file, series in zip(files, samples, strict=True):
        counts = _per_second(json_file)
        requests = sum(counts[t] for t in inner)
        steady_cpu = _cpu_between(series, inner[0], inner[-1] + 1)  # steady state: start-up and shut-down left out
        results.append((requests / len(inner), steady_cpu / requests * 1e6))
    return results


def bench_locust(rounds: int, seconds: int, users: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        plain_file = workdir / "plain_fast.py"
        plain_file.write_text(PLAIN_LOCUSTFILE)
        server = Haproxy(workdir)
        rows: list[dict[str, float]] = []
        sink_files = [SINK_LOCUSTFILE, HTTP_LOCUSTFILE]
        try:
            print(f"server: haproxy (1 thread) at {server.url}; {users} users per process, unpaced, {seconds}s runs")
            everything = set(range(os.cpu_count() or 1))
            for i in range(rounds):
                # Side by side: both locust processes on CPU 0, the server and this process (the
                # fixture's ingest) on the others, so the pair gets the same share of the same core.
                os.sched_setaffinity(server.proc.pid, everything - {0} or everything)
                os.sched_setaffinity(0, everything - {0} or everything)
                # 1. plain FastHttpUser and the fixture's built-in scenario
                (plain_rps, plain_cpu), (builtin_rps, builtin_cpu) = side_by_side(
                    PlainRun(server.url, [plain_file], seconds, users, workdir),
                    FixtureRun(server.url, seconds, users, workdir),
                    pin=0,
                )
                # 2. the built-in scenario without and with the sink (+ the ingest of its events, after)
                bare = PlainRun(server.url, [HTTP_LOCUSTFILE], seconds, users, workdir)
                sunk = PlainRun(server.url, sink_files, seconds, users, workdir, events=True)
                (_, bare_cpu), (sunk_rps, sunk_cpu) = side_by_side(bare, sunk, pin=0)
                ingest_cpu = sunk.ingest_cpu() / _rate(sunk.out / "stats.json")[1] * 1e6
                # 3. one process and workers=2: what the distributed run costs per request
                (_, alone_cpu), (_, spread_cpu) = side_by_side(
                    FixtureRun(server.url, seconds, users, workdir),
                    FixtureRun(server.url, seconds, users, workdir, workers=2),
                    pin=0,
                )
                os.sched_setaffinity(server.proc.pid, everything)
                os.sched_setaffinity(0, everything)
                # 4. one after the other (each needs the whole machine): one process, two workers, plain 1 and 2
                ((one_rps, one_cpu),) = side_by_side(FixtureRun(server.url, seconds, users, workdir))
                ((two_rps, two_cpu),) = side_by_side(FixtureRun(server.url, seconds, users, workdir, workers=2))
                ((plain1_rps, _),) = side_by_side(PlainRun(server.url, [plain_file], seconds, users, workdir))
                plain2 = side_by_side(*(PlainRun(server.url, [plain_file], seconds, users, workdir) for _ in range(2)))
                row = {
                    "builtin/plain": builtin_rps / plain_rps,
                    "cpu plain/builtin": plain_cpu / builtin_cpu,
                    "sink": (sunk_cpu + ingest_cpu) / bare_cpu - 1,
                    "workers2/one": two_rps / one_rps,
                    "workers2 cpu": spread_cpu / alone_cpu - 1,
                    "cores one": one_rps * one_cpu / 1e6,
                    "cores two": two_rps * two_cpu / 1e6,
                    "plain2/plain1": sum(r for r, _ in plain2) / plain1_rps,
                }
                rows.append(row)
                print(
                    f"round {i + 1} (load average {os.getloadavg()[0]:.1f}):\n"
                    f"  together: plain FastHttpUser {plain_rps:,.0f}/s ({plain_cpu:.0f} us CPU/req), "
                    f"built-in {builtin_rps:,.0f}/s ({builtin_cpu:.0f} us CPU/req)\n"
                    f"  together: built-in without sink {bare_cpu:.1f} us CPU/req, with sink {sunk_cpu:.1f} "
                    f"+ ingest {ingest_cpu:.1f} us CPU/req ({sunk_rps:,.0f}/s)\n"
                    f"  together: built-in one process {alone_cpu:.0f} us CPU/req, workers=2 {spread_cpu:.0f} us\n"
                    f"  in turn: built-in one process {one_rps:,.0f}/s ({one_cpu:.0f} us CPU/req), "
                    f"workers=2 {two_rps:,.0f}/s ({two_cpu:.0f} us CPU/req, all processes); "
                    f"plain one process {plain1_rps:,.0f}/s, two {sum(r for r, _ in plain2):,.0f}/s",
                    flush=True,
                )
        finally:
            server.close()

    def summary(key: str, fmt: str) -> str:
        values = [r[key] for r in rows]
        return f"{fmt.format(statistics.median(values))} [{', '.join(fmt.format(v) for v in values)}]"

    print("ratios, median of the rounds [each round]:")
    print(
        f"  built-in / plain FastHttpUser, requests/s (together): {summary('builtin/plain', 'x{:.2f}')}   target >= 0.8"
    )
    print(f"  plain / built-in, CPU per request (together):        {summary('cpu plain/builtin', 'x{:.2f}')}")
    print(f"  sink + ingest, CPU per request (together):           {summary('sink', '{:+.1%}')}   target <= +5%")
    print(
        f"  workers=2 / one process, requests/s (in turn):       {summary('workers2/one', 'x{:.2f}')}   target >= 1.5"
    )
    print(f"  the machine's ceiling: two plain locust processes / one: {summary('plain2/plain1', 'x{:.2f}')}")
    print(f"  workers=2 vs one process, CPU per request (together): {summary('workers2 cpu', '{:+.1%}')}")
    print(
        f"  cores the machine granted the load: one process {summary('cores one', '{:.2f}')}, "
        f"workers=2 {summary('cores two', '{:.2f}')}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-locust", action="store_true")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    if not args.skip_ingest:
        bench_ingest(args.requests)
    if not args.skip_locust:
        bench_locust(args.rounds, args.seconds, args.users)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
