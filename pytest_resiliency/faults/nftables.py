"""Packet blackhole: drop every TCP packet to a port with an nftables table (root, nftables).

Used by ``faults.blackhole(port, netns=...)``. The table lives inside a network namespace
the test made (:mod:`.netns`), or on the host with ``netns="host"``; a detached expiry
helper deletes it at the fault's maximum duration even when pytest is SIGKILLed.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

from .. import validate
from ..errors import ConfigError, FaultError
from .base import Fault
from .netns import NetNamespace, run

__all__ = ["PortBlackhole"]


class PortBlackhole(Fault):
    """Drop every TCP packet to ``port`` with an nftables rule (SYNs too: connects hang, then time out)."""

    kind = "port_blackhole"
    needs_expiry_helper = True

    def __init__(
        self,
        port: int,
        *,
        netns: NetNamespace | str | None = None,
        name: str | None = None,
        max_duration: float | str | None = None,
    ) -> None:
        super().__init__(name=name, max_duration=max_duration)
        validate.port(port, "faults.blackhole: port")
        if netns is None:
            raise ConfigError(
                "faults.blackhole: netns= is required for a port: a network namespace (the netns fixture makes one), "
                "or netns='host' to blackhole the port for every process on this machine"
            )
        self.port = port
        self.netns = netns.name if isinstance(netns, NetNamespace) else str(netns)
        self.table = f"resiliency_{uuid.uuid4().hex[:10]}"

    @property
    def target(self) -> str:
        return f"tcp port {self.port} in {'the host' if self.netns == 'host' else 'netns ' + self.netns}"

    def identities(self) -> list[str]:
        where = f"/run/netns/{self.netns}" if self.netns != "host" else "/proc/1/ns/net"
        return [f"netns {os.stat(where).st_ino} tcp port {self.port}"]

    def _prefix(self) -> list[str]:
        return [] if self.netns == "host" else ["ip", "netns", "exec", self.netns]

    def _prepare(self) -> None:
        why = NetNamespace.unavailable()
        if why:
            raise FaultError(f"faults.blackhole: {why}")
        if self.netns != "host" and not Path(f"/run/netns/{self.netns}").exists():
            raise FaultError(f"faults.blackhole: network namespace {self.netns!r} does not exist")

    def _inject(self) -> None:
        ruleset = (
            f"table inet {self.table} {{\n"
            "  chain input { type filter hook input priority -10; policy accept;\n"
            f"    tcp dport {self.port} drop\n"
            "  }\n"
            "}\n"
        )
        run([*self._prefix(), "nft", "-f", "-"], f"add nftables table {self.table}", stdin=ruleset)

    def _revert(self) -> None:
        done = subprocess.run(
            [*self._prefix(), "nft", "delete", "table", "inet", self.table], capture_output=True, text=True, timeout=10
        )
        if done.returncode != 0 and "No such file" not in done.stderr:
            raise FaultError(f"cannot delete nftables table {self.table}: {done.stderr.strip()}")

    def _undo_actions(self) -> list[dict[str, Any]]:
        netns = None if self.netns == "host" else self.netns
        return [{"op": "nft_delete_table", "netns": netns, "family": "inet", "table": self.table}]

    def params(self) -> dict[str, Any]:
        return {**super().params(), "port": self.port, "netns": self.netns, "table": self.table}

    def describe(self) -> str:
        return f"blackhole {self.target}"
