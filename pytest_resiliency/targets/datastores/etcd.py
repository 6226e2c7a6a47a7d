"""An etcd cluster as a target: N members started together, ready at quorum, leader discovery.

Members start as one :class:`~pytest_resiliency.targets.service.ServiceGroup`: started one by
one, the first member of a three-node cluster would wait for ever for peers that are not
started yet. The group is ready when every member reports the same leader. Writes and
reads use etcd's v3 JSON gateway (HTTP, no extra dependency), failing over between members
on a refused connection, as etcd's own client balancer does.

``faults.kill(cluster.leader)`` kills the current leader; the followers elect a new one
within about the election timeout, and "elected leader" in their logs (etcd's own
timestamps) is the truth the measured RTO is held against.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import secrets
from pathlib import Path
from typing import Any, Unpack

from ... import waiting
from ...errors import ConfigError
from ...host import free_port
from ...load import classifiers, stores
from ...validate import count, duration
from ..service import PassThroughOptions, Service
from . import KeyedTarget, LogEvent, require

PACKAGE = "etcd-server"
_ELECTED = re.compile(r"elected leader ([0-9a-f]+) at term (\d+)")


def log_time(line: str) -> float | None:
    """Epoch seconds of an etcd zap log line (``{"ts":"2026-11-29T15:24:29.870Z",...}``)."""
    try:
        stamp = json.loads(line)["ts"]
    except (ValueError, KeyError, TypeError):
        return None
    return _dt.datetime.strptime(stamp.rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=_dt.UTC).timestamp()


class EtcdMember:
    """One member: its service (the fault target), client and peer ports, its endpoint."""

    def __init__(self, name: str, service: Service) -> None:
        self.name = name
        self.service = service

    @property
    def process(self) -> Service:
        return self.service

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.service.port}"

    def __repr__(self) -> str:
        return f"<EtcdMember {self.name} {self.endpoint} pid={self.service.pid}>"


class EtcdCluster(KeyedTarget):
    """N supervised etcd members; create it with the ``etcd_cluster`` fixture.

    A write is ``/v3/kv/put`` through the first member that accepts the connection; reads are
    linearizable. The truth is one event per election, from the members' logs.
    """

    classify = staticmethod(classifiers.etcd)
    client: stores.EtcdStore

    def __init__(
        self,
        service: Any,
        data_dir: Path,
        *,
        nodes: int = 3,
        heartbeat: float | str = "50ms",
        election: float | str = "500ms",
        name: str = "etcd",
        restart_delay: float | str = "1s",
        timeout: float = 1.0,
        **options: Unpack[PassThroughOptions],
    ) -> None:
        count(nodes, "etcd: nodes", 1)  # 3 or 5 for a quorum cluster
        beat = round(duration(heartbeat, "heartbeat") * 1000)
        elect = round(duration(election, "election") * 1000)
        if beat < 1 or elect < 5 * beat:
            raise ConfigError(
                f"etcd: election={election!r} must be at least 5 x heartbeat={heartbeat!r} (etcd's own rule)"
            )
        binary = require("etcd", PACKAGE)
        self.name = name
        self.heartbeat = beat / 1000
        self.election = elect / 1000
        names = [f"{name}{i + 1}" for i in range(nodes)]
        peers = {n: free_port() for n in names}
        initial = ",".join(f"{n}=http://127.0.0.1:{peers[n]}" for n in names)
        token = f"resiliency-{secrets.token_hex(4)}"
        self.members: list[EtcdMember] = []
        for member in names:
            command = [
                binary,
                "--name", member,
                "--data-dir", str(data_dir / member),
                "--listen-client-urls", "http://127.0.0.1:{port}",
                "--advertise-client-urls", "http://127.0.0.1:{port}",
                "--listen-peer-urls", "http://127.0.0.1:{port:peer}",
                "--initial-advertise-peer-urls", "http://127.0.0.1:{port:peer}",
                "--initial-cluster", initial,
                "--initial-cluster-state", "new",
                "--initial-cluster-token", token,
                "--heartbeat-interval", str(beat),
                "--election-timeout", str(elect),
                "--logger", "zap",
                "--log-outputs", "stderr",
            ]  # fmt: skip
            svc = service.define(
                command,
                name=member,
                port=None,
                ports={"peer": peers[member]},
                restart_delay=restart_delay,
                **options,
            )
            self.members.append(EtcdMember(member, svc))
        self._service = service
        hosts = ",".join(f"127.0.0.1:{m.service.port}" for m in self.members)
        self.url = f"etcd://{hosts}"
        self.client = stores.EtcdStore(self.url, timeout=timeout)

    def start(self, timeout: float | str = 30.0) -> EtcdCluster:
        """Start every member together; ready when all of them follow one leader (quorum)."""
        self._service.group(
            [m.service for m in self.members], ready=self._agreed, name=self.name, start_timeout=timeout
        )
        return self

    def _agreed(self) -> None:
        leaders = {self.client.status(m.endpoint).get("leader", "0") for m in self.members}
        if len(leaders) != 1 or "0" in leaders:
            raise RuntimeError(f"members do not agree on a leader yet: {sorted(leaders)}")

    # -- leader ----------------------------------------------------------------------

    def statuses(self) -> dict[str, dict[str, Any]]:
        """``/v3/maintenance/status`` of every member that answers."""
        found = {}
        for member in self.members:
            try:
                found[member.name] = self.client.status(member.endpoint)
            except Exception:
                continue
        return found

    @property
    def leader(self) -> EtcdMember:
        """The member that is leader now (asked of the members that answer; they must agree)."""
        ids = {}
        leaders = set()
        for name, status in self.statuses().items():
            ids[str(status["header"]["member_id"])] = name
            leaders.add(str(status.get("leader", "0")))
        leaders.discard("0")
        if len(leaders) != 1 or next(iter(leaders)) not in ids:
            raise RuntimeError(f"etcd cluster {self.name!r} has no single known leader now (seen: {sorted(leaders)})")
        return self[ids[next(iter(leaders))]]

    def wait_leader(self, timeout: float | str = "10s", other_than: EtcdMember | None = None) -> EtcdMember:
        """Block until the members that answer agree on a leader (not ``other_than``); return it."""
        seconds = duration(timeout, "timeout")
        last: Exception | None = None

        def new_leader() -> EtcdMember | None:
            nonlocal last
            try:
                leader = self.leader
            except RuntimeError as exc:
                last = exc
                return None
            return leader if leader is not other_than else None

        found = waiting.poll(new_leader, seconds, 0.02)  # asking the members is the only way to learn of an election
        if found is not None:
            return found
        raise RuntimeError(f"etcd cluster {self.name!r}: no new leader within {seconds:g}s ({last})")

    @property
    def followers(self) -> list[EtcdMember]:
        leader = self.leader
        return [m for m in self.members if m is not leader]

    def __getitem__(self, name: str) -> EtcdMember:
        for member in self.members:
            if member.name == name:
                return member
        raise KeyError(f"etcd cluster {self.name!r} has no member {name!r}")

    def __iter__(self) -> Any:
        return iter(self.members)

    def __len__(self) -> int:
        return len(self.members)

    # -- data ------------------------------------------------------------------------

    def truth(self) -> list[LogEvent]:
        """One event per election: the first member's "elected leader … at term N" line, etcd's own time."""
        first: dict[str, LogEvent] = {}
        for member in self.members:
            for line in member.service.log_lines(_ELECTED):
                at = log_time(line.text)
                found = _ELECTED.search(line.text)
                if at is None or not found:
                    continue
                term = found.group(2)
                if term not in first or at < first[term].at:
                    first[term] = LogEvent(f"leader elected (term {term})", at, member.name, line.text)
        return sorted(first.values(), key=lambda e: e.at)

    def __repr__(self) -> str:
        return f"<EtcdCluster {self.name} {[m.name for m in self.members]}>"
