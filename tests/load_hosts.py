"""Load hosts for distributed-load tests and benchmarks: network namespaces joined by veth pairs.

Each load host is a namespace with its own network stack, joined to this host by a veth
pair with private addresses from a /24 no interface here uses. Workers run inside it with
the documented command (``python -m pytest_resiliency.load.worker``). Needs root and
iproute2; :func:`unavailable` says why not, so a test can skip with the reason.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from load_servers import OrdersServer


class NamespaceError(RuntimeError):
    """A namespace could not be created; the message is the reason."""


class TimedOrders(OrdersServer):
    """The orders server, noting when each write arrived by this host's clock (independent truth)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.received: dict[str, float] = {}
        super().__init__(host)

    def put(self, key: str) -> None:
        self.received[key] = time.time()
        super().put(key)


class LoadHost:
    """A network namespace joined to this host by a veth pair: a load host with its own stack."""

    def __init__(self, name: str, host_if: str, host_ip: str, ip: str) -> None:
        self.name, self.host_if, self.host_ip, self.ip = name, host_if, host_ip, ip
        self.procs: list[subprocess.Popen[bytes]] = []

    def worker(self, master: str, port: int | None, name: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
        """Start a worker in this namespace with the documented command."""
        argv = ["ip", "netns", "exec", self.name, sys.executable, "-m", "pytest_resiliency.load.worker"]
        argv += ["--master-host", master, "--master-port", str(port), "--name", name]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs.append(proc)
        return proc

    def kill(self) -> None:
        """SIGKILL every process of this load host: the host dies without a word to the master."""
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.procs:
            proc.wait(timeout=10)

    def pids(self) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def remove(self) -> None:
        """Kill everything in the namespace, then delete the veth pair and the namespace."""
        with contextlib.suppress(Exception):
            self.kill()
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for proc in self.procs:  # a killed worker's fetched locustfiles (the pid survives the execs)
            for leftover in Path(tempfile.gettempdir()).glob(f"resiliency-worker-{proc.pid}-*"):
                shutil.rmtree(leftover, ignore_errors=True)
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


def unavailable() -> str | None:
    """Why load hosts cannot be made here, or ``None``."""
    if os.geteuid() != 0:
        return "load hosts are network namespaces, which need root"
    if not shutil.which("ip"):
        return "iproute2's `ip` is missing (apt-get install iproute2): cannot create network namespaces"
    return None


def _used_networks() -> list[ipaddress.IPv4Network]:
    out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True).stdout
    nets = []
    for line in out.splitlines():
        fields = line.split()
        if "inet" in fields:
            nets.append(ipaddress.IPv4Interface(fields[fields.index("inet") + 1]).network)
    return nets


def make_hosts(n: int, made: list[LoadHost]) -> list[LoadHost]:
    """``n`` load hosts, appended to ``made`` as they are created (so a caller can always remove them)."""
    used = _used_networks()
    for _ in range(50):
        block = ipaddress.IPv4Network(f"10.{random.randint(200, 250)}.{random.randint(0, 255)}.0/24")
        if not any(block.overlaps(net) for net in used):
            break
    tag = f"{os.getpid() % 10000:04d}{random.randint(0, 99):02d}"
    hosts = []
    for i in range(n):
        base = block.network_address + 4 * (len(made) % 60)
        host = LoadHost(f"rzd{tag}{i}", f"rzd{tag}{i}h", str(base + 1), str(base + 2))
        ns_if = f"rzd{tag}{i}n"
        steps = [
            ["ip", "netns", "add", host.name],
            ["ip", "link", "add", host.host_if, "type", "veth", "peer", "name", ns_if],
            ["ip", "link", "set", ns_if, "netns", host.name],
            ["ip", "addr", "add", f"{host.host_ip}/30", "dev", host.host_if],
            ["ip", "link", "set", host.host_if, "up"],
            ["ip", "-n", host.name, "addr", "add", f"{host.ip}/30", "dev", ns_if],
            ["ip", "-n", host.name, "link", "set", ns_if, "up"],
            ["ip", "-n", host.name, "link", "set", "lo", "up"],
            ["ip", "-n", host.name, "route", "add", "default", "via", host.host_ip],
        ]
        made.append(host)
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True)
            if done.returncode != 0:
                raise NamespaceError(f"{' '.join(step)}: {done.stderr.strip()}")
        hosts.append(host)
    return hosts
