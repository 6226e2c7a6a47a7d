"""Throughput of the demo, so the load is known not to be limited by it.

``python -m resiliency_tests.demo.bench --durability fsync --seconds 5 --writes 0.3``
starts an orders process (pinned to one CPU when possible), drives it with keep-alive
connections from ``--clients`` client processes (raw asyncio sockets, far cheaper than
an HTTP library) and prints requests/s. Reads are ``GET /orders/<key>``, writes
``POST /orders`` with fresh keys.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import random
import tempfile
import time
from pathlib import Path

from .harness import DemoProcess


async def _connection(port: int, until: float, writes: float, tag: str, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    n = 0
    rng = random.Random(tag)
    try:
        while time.monotonic() < until:
            n += 1
            if rng.random() < writes:
                body = f'{{"key":"{tag}-{n}","amount":1}}'.encode()
                head = f"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                writer.write(head + body)
            else:
                writer.write(f"GET /orders/{tag}-{max(1, n - 1)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            head_bytes = await reader.readuntil(b"\r\n\r\n")
            length = int(head_bytes.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            status = int(head_bytes[9:12])
            counts[0 if status < 500 else 1] += 1
    finally:
        writer.close()


def _client(port: int, seconds: float, connections: int, writes: float, index: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    counts = [0, 0]
    until = time.monotonic() + seconds

    async def run() -> None:
        await asyncio.gather(*(_connection(port, until, writes, f"c{index}x{i}", counts) for i in range(connections)))

    asyncio.run(run())
    out.put(counts)


def bench(durability: str, seconds: float, clients: int, connections: int, writes: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        args = ["--durability", durability] + ([] if durability == "memory" else ["--data-dir", tmp])
        with DemoProcess("orders", *args, log=Path(tmp) / "orders.out") as server:
            assert server.pid is not None
            with contextlib.suppress(OSError, AttributeError):
                os.sched_setaffinity(server.pid, {0})  # one core for the server
            out: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
            procs = [
                multiprocessing.Process(target=_client, args=(server.port, seconds, connections, writes, i, out))
                for i in range(clients)
            ]
            began = time.monotonic()
            for p in procs:
                p.start()
            totals = [0, 0]
            for _ in procs:
                ok, bad = out.get(timeout=seconds + 30)
                totals[0] += ok
                totals[1] += bad
            for p in procs:
                p.join(10)
            elapsed = time.monotonic() - began
    return {"requests_per_s": sum(totals) / seconds, "errors": totals[1], "elapsed": elapsed}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--durability", choices=("fsync", "snapshot", "memory"), default="fsync")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--clients", type=int, default=2, help="client processes")
    p.add_argument("--connections", type=int, default=16, help="keep-alive connections per client process")
    p.add_argument("--writes", type=float, default=0.3, help="fraction of requests that are writes")
    a = p.parse_args()
    result = bench(a.durability, a.seconds, a.clients, a.connections, a.writes)
    print(
        f"durability={a.durability} writes={a.writes:.0%} clients={a.clients}x{a.connections}: "
        f"{result['requests_per_s']:.0f} requests/s, {result['errors']:.0f} errors"
    )


if __name__ == "__main__":
    main()
