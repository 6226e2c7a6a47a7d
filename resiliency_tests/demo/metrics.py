"""Prometheus metrics of a demo process (``GET /metrics``), with prometheus-client.

What a team's service exports and its SLIs are built on: ``demo_http_requests_total``
(by role, route, method and status code) and ``demo_http_request_duration_seconds`` (a
histogram by role and route). Each process has its own registry. Without prometheus-client
installed the demo still runs and ``/metrics`` answers 501 saying what to install.
"""

from __future__ import annotations

import inspect
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .web import HttpError, Request, Response

Handler = Callable[[Request], "Response | Awaitable[Response]"]
MAX_CACHED = 256
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_KEYED = re.compile(r"^/orders/(?!_lookup$)[^/]+$")
ROUTES = frozenset(
    {"/orders", "/orders/_lookup", "/orders/{key}", "/health", "/replication/since", "/admin/promote", "/entries"}
)


def route_of(path: str) -> str:
    """A bounded label: ``/orders/<key>`` is one route and any unknown path is ``other``."""
    route = "/orders/{key}" if _KEYED.match(path) else path
    return route if route in ROUTES else "other"


class Metrics:
    """Counts and times every request of one process, and serves ``GET /metrics``."""

    def __init__(self, role: str) -> None:
        self.role = role
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        try:
            from prometheus_client import CollectorRegistry, Counter, Histogram
        except ImportError:
            self.registry = None
            return
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "demo_http_requests",
            "HTTP requests answered, by role, route, method and status code",
            ["role", "route", "method", "code"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "demo_http_request_duration_seconds",
            "Time to answer an HTTP request, by role and route",
            ["role", "route"],
            buckets=BUCKETS,
            registry=self.registry,
        )

    def exposition(self) -> Response:
        if self.registry is None:
            return Response(501, "prometheus-client is not installed: pip install prometheus-client\n")
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(200, generate_latest(self.registry), {"Content-Type": CONTENT_TYPE_LATEST})

    def observe(self, request: Request, status: int, began: float) -> None:
        if self.registry is None:
            return
        route = route_of(request.path)
        key = (route, request.method, status)
        children = self._children.get(key)
        if children is None:  # labels() costs ~10 us a call: resolve each combination once
            children = (
                self.requests.labels(self.role, route, request.method, str(status)),
                self.duration.labels(self.role, route),
            )
            if len(self._children) < MAX_CACHED:  # methods and codes are few, but bound it anyway
                self._children[key] = children
        children[0].inc()
        children[1].observe(time.perf_counter() - began)

    def wrap(self, handler: Handler) -> Callable[[Request], Any]:
        """``handler`` with every answer counted (errors included) and ``/metrics`` served."""

        def handle(request: Request) -> Any:
            if request.path == "/metrics" and request.method == "GET":
                return self.exposition()
            began = time.perf_counter()
            try:
                result = handler(request)
            except HttpError as exc:
                self.observe(request, exc.status, began)
                raise
            except Exception:
                self.observe(request, 500, began)
                raise
            if not inspect.isawaitable(result):
                self.observe(request, result.status, began)
                return result
            return self._finish(request, result, began)

        return handle

    async def _finish(self, request: Request, pending: Awaitable[Response], began: float) -> Response:
        try:
            response = await pending
        except HttpError as exc:
            self.observe(request, exc.status, began)
            raise
        except Exception:
            self.observe(request, 500, began)
            raise
        self.observe(request, response.status, began)
        return response
