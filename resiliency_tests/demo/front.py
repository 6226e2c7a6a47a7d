"""The front: a stable TCP port in front of the primary that fails over to the replica.

Clients (the load) only ever know the front's address. It forwards every connection to
the current primary and health-checks it every ``check_every`` seconds; after
``failover_after`` failed checks in a row it promotes the replica (``POST /admin/promote``)
and sends new connections there. It never fails back on its own: the old primary would
have diverged (a real orchestrator fences it; here it simply is not restarted).

An admin port answers ``GET /status`` with the current upstream and the failover history.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from typing import Any

from .web import Client, ClientError, HttpError, Request, Response


class Front:
    def __init__(
        self,
        primary: tuple[str, int],
        replica: tuple[str, int] | None,
        *,
        check_every: float = 0.1,
        failover_after: int = 3,
    ) -> None:
        if check_every <= 0 or failover_after < 1:
            raise ValueError("check_every must be > 0 and failover_after >= 1")
        self.upstream = primary
        self.replica = replica
        self.check_every = check_every
        self.failover_after = failover_after
        self.failures = 0
        self.failovers: list[dict[str, Any]] = []
        self.connections = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._checker: asyncio.Task[None] | None = None

    # -- forwarding --------------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*self.upstream), 1.0)
        except (OSError, TimeoutError):
            writer.close()  # the client sees a reset/closed connection, as with a dead primary
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    # -- failover ------------------------------------------------------------------------

    def start(self) -> None:
        if self.replica is not None:
            self._checker = asyncio.get_running_loop().create_task(self._check())

    async def close(self) -> None:
        if self._checker is not None:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker

    async def _check(self) -> None:
        assert self.replica is not None
        health = Client(*self.upstream, timeout=max(0.2, self.check_every * 2), size=1)
        while True:
            await asyncio.sleep(self.check_every)
            try:
                status, _ = await health.request("GET", "/health")
                ok = status == 200
            except ClientError:
                ok = False
            self.failures = 0 if ok else self.failures + 1
            if self.failures >= self.failover_after:
                await self._failover()
                return

    async def _failover(self) -> None:
        assert self.replica is not None
        detected = time.time()
        replica = Client(*self.replica, timeout=2.0, size=1)
        for _ in range(50):  # bounded: 50 tries, a few seconds at most
            try:
                status, _ = await replica.request("POST", "/admin/promote")
                if status == 200:
                    break
            except ClientError:
                pass
            await asyncio.sleep(0.1)
        else:
            self.failovers.append({"detected_at": detected, "promoted_at": None, "error": "promote failed"})
            return
        old, self.upstream = self.upstream, self.replica
        self.failovers.append(
            {"detected_at": detected, "promoted_at": time.time(), "from": f"{old[0]}:{old[1]}", "to": self.replica}
        )
        print(f"front: failed over from {old[0]}:{old[1]} to {self.replica[0]}:{self.replica[1]}", flush=True)

    # -- admin ---------------------------------------------------------------------------

    def admin(self, request: Request) -> Response:
        if request.path == "/status" and request.method == "GET":
            return Response(
                200,
                {
                    "upstream": f"{self.upstream[0]}:{self.upstream[1]}",
                    "failovers": self.failovers,
                    "connections": self.connections,
                },
            )
        if request.path == "/health" and request.method == "GET":
            return Response(200, {"status": "ok", "role": "front", "pid": os.getpid()})
        raise HttpError(404, f"no route {request.method} {request.path}")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()
