"""The orders API: create/get/list orders, health, and an asynchronous replica with failover.

HTTP convention (the load's built-in scenario speaks it):

* ``POST /orders`` with ``{"key": "...", ...}`` creates an order: ``201`` once it is durable
  (per the durability mode), ``200`` if that key already exists (idempotent retry), ``503``
  when the ledger dependency is unavailable, ``507`` when the disk is full. Only a 2xx is
  an acknowledgement. A body without ``key`` gets one generated.
* ``GET /orders/<key>``: ``200`` with the order, ``404`` when absent.
* ``GET /orders?limit=N``: the count and the newest keys. ``POST /orders/_lookup`` with
  ``{"keys": [...]}`` answers ``{"present": [...]}`` (bulk read-back for RPO checks).
* ``GET /health``: ``200`` with role, durability, counts and snapshot times.
* ``GET /replication/since?pos=N&lag=S``: the log after position N, held back by S seconds
  (the replica's pull). ``POST /admin/promote`` turns a replica into the primary.

A replica (``--replica-of``) pulls the primary's log every ``poll`` seconds, asking only
for records older than ``--replication-lag``: that is the real replication lag, and what a
failover loses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import urllib.parse
import uuid
from typing import Any

from .store import StorageError, Store
from .web import Client, ClientError, HttpError, Request, Response

LIST_LIMIT = 100


def split_hostport(address: str, what: str) -> tuple[str, int]:
    """``host:port`` or ``http://host:port`` -> (host, port), with a clear error otherwise."""
    text = address if "//" in address else "http://" + address
    parts = urllib.parse.urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ValueError(f"{what} {address!r} is not host:port or http://host:port")
    return parts.hostname, port


class OrdersApp:
    """The request handler of one orders process (a primary or a replica)."""

    def __init__(
        self,
        store: Store,
        *,
        ledger: str | None = None,
        ledger_timeout: float = 1.0,
        replica_of: str | None = None,
        replication_lag: float = 0.0,
        replication_poll: float = 0.05,
    ) -> None:
        self.store = store
        self.started_at = time.time()
        self.role = "replica" if replica_of else "primary"
        self.ledger = Client(*split_hostport(ledger, "ledger"), timeout=ledger_timeout) if ledger else None
        self.ledger_failures = 0
        self.upstream = Client(*split_hostport(replica_of, "replica-of"), timeout=2.0) if replica_of else None
        self.replication_lag = replication_lag
        self.replication_poll = replication_poll
        self.replicated_pos = 0
        self.last_pull_at: float | None = None
        self.promoted_at: float | None = None
        self._replication: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.store.start()
        if self.upstream is not None:
            self._replication = asyncio.get_running_loop().create_task(self._replicate())

    async def close(self) -> None:
        await self._stop_replication()
        await self.store.close()
        for client in (self.ledger, self.upstream):
            if client is not None:
                client.close()

    # -- routing -------------------------------------------------------------------------

    def __call__(self, request: Request) -> Response | Any:
        path, method = request.path, request.method
        if path == "/orders":
            if method == "POST":
                return self.create(request)
            if method == "GET":
                return self.list(request)
        elif path == "/orders/_lookup" and method == "POST":
            return self.lookup(request)
        elif path.startswith("/orders/") and method == "GET":
            return self.read(urllib.parse.unquote(path[len("/orders/") :]))
        elif path == "/health" and method == "GET":
            return Response(200, self.health())
        elif path == "/replication/since" and method == "GET":
            return self.since(request)
        elif path == "/admin/promote" and method == "POST":
            return self.promote()
        else:
            raise HttpError(404, f"no route {method} {path}")
        raise HttpError(405, f"{method} not allowed on {path}")

    # -- orders ----------------------------------------------------------------------------

    async def create(self, request: Request) -> Response:
        if self.role != "primary":
            raise HttpError(503, "read-only replica: writes go to the primary")
        body = request.json()
        if not isinstance(body, dict):
            raise HttpError(400, "order body must be a JSON object")
        key = body.get("key", body.get("id"))
        if key is None:
            key = uuid.uuid4().hex
        if not isinstance(key, str) or not key or len(key) > 200 or "/" in key:
            raise HttpError(400, f"order key {key!r} must be a non-empty string of at most 200 chars without '/'")
        if key in self.store.orders:
            return Response(200, self.store.orders[key].as_dict())
        if self.ledger is not None:
            await self._post_to_ledger(key, body)
        try:
            order, created = await self.store.put(key, {k: v for k, v in body.items() if k != "key"})
        except StorageError as exc:
            raise HttpError(507, str(exc)) from None
        return Response(201 if created else 200, order.as_dict())

    async def _post_to_ledger(self, key: str, body: dict[str, Any]) -> None:
        assert self.ledger is not None
        try:
            status, _ = await self.ledger.request("POST", "/entries", {"order": key, "amount": body.get("amount", 1)})
        except ClientError as exc:
            self.ledger_failures += 1
            raise HttpError(503, f"ledger unavailable: {exc}") from None
        if status >= 300:
            self.ledger_failures += 1
            raise HttpError(503 if status >= 500 else 502, f"ledger answered {status}")

    def read(self, key: str) -> Response:
        order = self.store.get(key)
        if order is None:
            raise HttpError(404, f"no order {key!r}")
        return Response(200, order.as_dict())

    def list(self, request: Request) -> Response:
        query = urllib.parse.parse_qs(request.query)
        try:
            limit = int(query.get("limit", [str(LIST_LIMIT)])[0])
        except ValueError:
            raise HttpError(400, "limit must be a whole number") from None
        if not 0 <= limit <= 10_000:
            raise HttpError(400, f"limit {limit} must be between 0 and 10000")
        newest = [o.key for o in self.store.log[-limit:]] if limit else []
        return Response(200, {"count": len(self.store.orders), "keys": newest[::-1]})

    def lookup(self, request: Request) -> Response:
        body = request.json()
        keys = body.get("keys") if isinstance(body, dict) else None
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise HttpError(400, 'lookup body must be {"keys": ["...", ...]}')
        return Response(200, {"present": [k for k in keys if k in self.store.orders]})

    def health(self) -> dict[str, Any]:
        s = self.store
        return {
            "status": "ok",
            "role": self.role,
            "pid": os.getpid(),
            "durability": s.durability,
            "orders": len(s.orders),
            "seq": s.seq,
            "recovered": s.stats.recovered,
            "writes": s.stats.writes,
            "refused_writes": s.stats.refused,
            "fsyncs": s.stats.fsyncs,
            "snapshot_interval": s.snapshot_interval if s.durability == "snapshot" else None,
            "last_snapshot_at": s.last_snapshot_at,
            "next_snapshot_at": s.next_snapshot_at,
            "snapshot_errors": s.stats.snapshot_errors,
            "last_error": s.stats.last_error,
            "ledger_failures": self.ledger_failures,
            "replication_lag": self.replication_lag if self.upstream is not None else None,
            "replicated": self.replicated_pos if self.upstream is not None else None,
            "last_pull_at": self.last_pull_at,
            "promoted_at": self.promoted_at,
            "started_at": self.started_at,
            "now": time.time(),
        }

    # -- replication ---------------------------------------------------------------------

    def since(self, request: Request) -> Response:
        query = urllib.parse.parse_qs(request.query)
        try:
            pos = int(query.get("pos", ["0"])[0])
            lag = float(query.get("lag", ["0"])[0])
        except ValueError:
            raise HttpError(400, "pos must be a whole number and lag a number of seconds") from None
        if pos < 0 or lag < 0:
            raise HttpError(400, "pos and lag must be >= 0")
        cutoff = time.time() - lag
        log = self.store.log
        end = pos
        while end < len(log) and end - pos < 5000 and log[end].committed_at <= cutoff:
            end += 1
        rows = [{"key": o.key, "body": o.body, "committed_at": o.committed_at} for o in log[pos:end]]
        return Response(200, {"pos": end, "rows": rows, "role": self.role})

    async def _replicate(self) -> None:
        assert self.upstream is not None
        while self.role == "replica":
            path = f"/replication/since?pos={self.replicated_pos}&lag={self.replication_lag}"
            with contextlib.suppress(ClientError, ValueError, KeyError, StorageError):
                status, data = await self.upstream.request("GET", path)
                if status == 200:
                    batch = json.loads(data)
                    for row in batch["rows"]:
                        await self.store.put(row["key"], row["body"], committed_at=row["committed_at"])
                    self.replicated_pos = batch["pos"]
                    self.last_pull_at = time.time()
                    if len(batch["rows"]) >= 5000:
                        continue
            await asyncio.sleep(self.replication_poll)

    async def _stop_replication(self) -> None:
        if self._replication is not None:
            self._replication.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._replication
            self._replication = None

    async def promote(self) -> Response:
        """Failover: stop pulling from the (dead) primary and accept writes from now on."""
        if self.role == "primary":
            return Response(200, {"role": "primary", "promoted_at": self.promoted_at})
        self.role = "primary"
        self.promoted_at = time.time()
        await self._stop_replication()
        return Response(200, {"role": "primary", "promoted_at": self.promoted_at, "orders": len(self.store.orders)})
