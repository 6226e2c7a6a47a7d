"""The ledger: the downstream dependency every order is posted to before it is accepted.

It is deliberately trivial (an in-memory list of entries): what matters is that the orders
API calls it over TCP on every write, so a fault proxy in between shows how the API behaves
when its dependency is slow, refuses connections or hangs.

* ``POST /entries`` with ``{"order": "...", "amount": N}`` -> ``201``.
* ``GET /entries`` -> ``{"count": N}``; ``GET /health`` -> ``200``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from .web import HttpError, Request, Response


class LedgerApp:
    def __init__(self) -> None:
        self.entries: list[tuple[str, Any, float]] = []

    def __call__(self, request: Request) -> Response:
        if request.path == "/entries" and request.method == "POST":
            body = request.json()
            if not isinstance(body, dict) or not isinstance(body.get("order"), str):
                raise HttpError(400, 'entry body must be {"order": "<key>", "amount": <number>}')
            self.entries.append((body["order"], body.get("amount"), time.time()))
            return Response(201, {"entry": len(self.entries)})
        if request.path == "/entries" and request.method == "GET":
            return Response(200, {"count": len(self.entries)})
        if request.path == "/health" and request.method == "GET":
            return Response(200, {"status": "ok", "role": "ledger", "pid": os.getpid(), "entries": len(self.entries)})
        raise HttpError(404, f"no route {request.method} {request.path}")
