"""Injection and revert latency per fault kind, and the fault proxy's latency precision.

    python3 benchmarks/bench_faults.py [--rounds N]

Injection latency is the wall time of ``fault.inject()`` (target resolution, claim, journal
entry, expiry helper, the action); revert latency that of ``fault.revert()``. Proxy precision
is the added round-trip time through the proxy with a latency toxic, minus the proxy's own
round trip, against the requested delay: median / min / max error.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_resiliency import faults
from pytest_resiliency.faults.base import Fault
from pytest_resiliency.faults.netns import NetNamespace
from pytest_resiliency.faults.toxics import Proxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


def _ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:7.2f} ms  max {max(values) * 1000:7.2f} ms"


def bench_fault(make: Callable[[], Fault], rounds: int) -> tuple[list[float], list[float]]:
    injects, reverts = [], []
    for _ in range(rounds):
        fault = make()
        started = time.perf_counter()
        fault.inject()
        injects.append(time.perf_counter() - started)
        started = time.perf_counter()
        fault.revert()
        reverts.append(time.perf_counter() - started)
    return injects, reverts


def rtt(sock: socket.socket) -> float:
    started = time.perf_counter()
    sock.sendall(b"ping")
    got = b""
    while len(got) < 4:
        got += sock.recv(64)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    os.environ.setdefault("RESILIENCY_JOURNAL_DIR", str(tmp / "journal"))
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    proxy = Proxy(server.server_address[1])
    ns: NetNamespace | None = None
    try:
        kinds: dict[str, Callable[[], Fault]] = {
            "pause (SIGSTOP/SIGCONT)": lambda: faults.pause(sleeper.pid),
            "kill (SIGCONT, harmless)": lambda: faults.kill(sleeper.pid, signal="SIGCONT"),
            "cpu_stress stress-ng": lambda: faults.cpu_stress(1, 10, engine="stress-ng", max_duration=30),
            "cpu_stress python": lambda: faults.cpu_stress(1, 10, engine="python", max_duration=30),
            "memory_stress 16MiB": lambda: faults.memory_stress(16 << 20, max_duration=30),
            "io_stress 1MiB": lambda: faults.io_stress(1, bytes=1 << 20, path=tmp, max_duration=30),
            "disk_fill 64MiB": lambda: faults.disk_fill(tmp, 64 << 20),
            "latency toxic": lambda: faults.latency(proxy, "10ms"),
        }
        if not shutil.which("stress-ng"):
            del kinds["cpu_stress stress-ng"]
        if NetNamespace.unavailable() is None:
            ns = NetNamespace().create()
            name = ns.name
            kinds["blackhole (nft)"] = lambda: faults.blackhole(8080, netns=name)
        print(f"fault injection and revert latency ({args.rounds} rounds each)")
        for label, make in kinds.items():
            injects, reverts = bench_fault(make, args.rounds)
            print(f"  {label:26s} inject {_ms(injects)} | revert {_ms(reverts)}")
        print("proxy latency precision (added round trip vs requested, 40 samples each)")
        with socket.create_connection(("127.0.0.1", proxy.port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            base = statistics.median(rtt(sock) for _ in range(40))
            print(f"  proxy round trip without toxics: median {base * 1000:.3f} ms")
            for requested in (1, 10, 50, 200):
                with faults.latency(proxy, requested / 1000):
                    errors: list[Any] = [(rtt(sock) - base) * 1000 - requested for _ in range(40)]
                print(
                    f"  {requested:4d} ms: error median {statistics.median(errors):+.3f} ms"
                    f"  min {min(errors):+.3f} ms  max {max(errors):+.3f} ms"
                )
    finally:
        proxy.close()
        sleeper.kill()
        sleeper.wait()
        server.shutdown()
        server.server_close()
        if ns is not None:
            ns.delete()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
