"""Command line: ``python -m resiliency_tests.demo {orders,ledger,front} ...``.

Each command serves until SIGTERM/SIGINT (clean shutdown: a snapshot store writes a last
snapshot), prints ``ready http://127.0.0.1:PORT`` on stdout once it accepts connections
and, with ``--port-file``, writes the port there (handy with ``--port 0``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from .app import OrdersApp, split_hostport
from .front import Front
from .ledger import LedgerApp
from .metrics import Metrics
from .store import DURABILITIES, Store
from .web import Server

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s)?\s*$")


def duration(text: str) -> float:
    """``0.5``, ``500ms`` or ``2s`` -> seconds (argparse type)."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration; use seconds (0.5) or '500ms' / '2s'")
    return float(match.group(1)) * (0.001 if match.group(2) == "ms" else 1.0)


def hostport(what: str) -> Callable[[str], tuple[str, int]]:
    def parse(text: str) -> tuple[str, int]:
        try:
            return split_hostport(text, what)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def port(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = -1
    if not 0 <= number < 65536:
        raise argparse.ArgumentTypeError(f"port {text!r} must be a whole number between 0 and 65535 (0: any free port)")
    return number


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m resiliency_tests.demo", description="the demo orders/ledger workload")
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    common.add_argument("--port", type=port, default=0, help="port to bind; 0 picks a free one (default)")
    common.add_argument("--port-file", type=Path, help="write the bound port to this file once ready")
    common.add_argument(
        "--no-metrics", action="store_true", help="do not serve Prometheus metrics on /metrics (saves ~5-10 us/request)"
    )

    orders = sub.add_parser("orders", parents=[common], help="the orders API (a primary or a replica)")
    orders.add_argument("--durability", choices=DURABILITIES, default="fsync", help="default fsync")
    orders.add_argument("--data-dir", type=Path, help="where the log / snapshot live (not for memory)")
    orders.add_argument("--snapshot-interval", type=duration, default=1.0, help="snapshot period (default 1s)")
    orders.add_argument("--ledger", type=hostport("--ledger"), help="host:port of the ledger dependency")
    orders.add_argument("--ledger-timeout", type=duration, default=1.0, help="ledger call timeout (default 1s)")
    orders.add_argument("--replica-of", type=hostport("--replica-of"), help="run as an async replica of host:port")
    orders.add_argument("--replication-lag", type=duration, default=0.5, help="how far the replica trails (0.5s)")

    sub.add_parser("ledger", parents=[common], help="the ledger dependency")

    front = sub.add_parser("front", parents=[common], help="a stable port that fails over to the replica")
    front.add_argument("--primary", type=hostport("--primary"), required=True, help="host:port of the primary")
    front.add_argument("--replica", type=hostport("--replica"), help="host:port of the replica to promote")
    front.add_argument("--admin-port", type=port, default=0, help="port of GET /status (default: a free one)")
    front.add_argument("--admin-port-file", type=Path, help="write the admin port to this file")
    front.add_argument("--check-every", type=duration, default=0.1, help="primary health check period (100ms)")
    front.add_argument("--failover-after", type=int, default=3, help="failed checks before failover (3)")
    return p


async def _serve(args: argparse.Namespace) -> None:
    cleanup: list[Callable[[], Awaitable[None]]] = []
    if args.command == "orders":
        ledger = f"{args.ledger[0]}:{args.ledger[1]}" if args.ledger else None
        replica_of = f"{args.replica_of[0]}:{args.replica_of[1]}" if args.replica_of else None
        store = Store(args.durability, args.data_dir, args.snapshot_interval)
        recovered = store.recover()
        app = OrdersApp(
            store,
            ledger=ledger,
            ledger_timeout=args.ledger_timeout,
            replica_of=replica_of,
            replication_lag=args.replication_lag,
        )
        server = Server(app if args.no_metrics else Metrics("orders").wrap(app), args.host, args.port)
        await server.start()
        app.start()
        cleanup.append(app.close)
        print(f"orders: {app.role}, durability {args.durability}, recovered {recovered} orders", flush=True)
    elif args.command == "ledger":
        ledger_app = LedgerApp()
        server = Server(ledger_app if args.no_metrics else Metrics("ledger").wrap(ledger_app), args.host, args.port)
        await server.start()
    else:
        front = Front(args.primary, args.replica, check_every=args.check_every, failover_after=args.failover_after)
        tcp = await asyncio.start_server(front.handle, args.host, args.port, reuse_address=True, backlog=1024)
        admin = Server(front.admin, args.host, args.admin_port)
        await admin.start()
        front.start()
        if args.admin_port_file:
            _write_port(args.admin_port_file, admin.port)
        print(f"front: admin http://{args.host}:{admin.port}/status", flush=True)
        server = Server(front.admin, args.host, 0)  # placeholder so the code below is uniform
        server.port = tcp.sockets[0].getsockname()[1]

        async def close_front() -> None:
            tcp.close()
            await front.close()
            await admin.close()

        cleanup.append(close_front)
    if args.port_file:
        _write_port(args.port_file, server.port)
    print(f"ready http://{args.host}:{server.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.close()
    for close in cleanup:
        await close()


def _write_port(path: Path, number: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(str(number))
    tmp.replace(path)  # readers never see a half-written port


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except (ValueError, OSError) as exc:
        print(f"demo {args.command}: {exc}", file=sys.stderr, flush=True)
        return 2
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    return 0
