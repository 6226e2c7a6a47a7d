"""Cost of the demo's Prometheus metrics per request (resiliency_tests/demo/metrics.py).

``python benchmarks/bench_demo_metrics.py`` times the demo's request handling wrapper with and
without metrics, in process (no sockets, so the figure is the metrics' own cost), and prints
microseconds per request for a plain and a keyed route.
"""

from __future__ import annotations

import functools
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from resiliency_tests.demo.metrics import Metrics
from resiliency_tests.demo.web import Request, Response


def main() -> None:
    response = Response(200, {"ok": True})

    def raw(_: Request) -> Response:
        return response

    wrapped = Metrics("orders").wrap(raw)
    n = 200_000
    for path in ("/health", "/orders/k-1"):
        request = Request("GET", path, "", {}, b"")
        plain = min(timeit.repeat(functools.partial(raw, request), number=n, repeat=5)) / n
        counted = min(timeit.repeat(functools.partial(wrapped, request), number=n, repeat=5)) / n
        print(
            f"{path:12s} without {plain * 1e6:5.2f} us  with metrics {counted * 1e6:5.2f} us  "
            f"cost {(counted - plain) * 1e6:5.2f} us/request"
        )


if __name__ == "__main__":
    main()
