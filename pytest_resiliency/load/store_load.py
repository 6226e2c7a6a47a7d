"""``load(url, client="redis")``: turn a store URL into the locust run of :mod:`.sink.clients`.

Pytest side only (no locust import): checks the client name and URL and builds the
``load`` options — the clients locustfile and its ``--resiliency-client`` settings.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

from .. import validate
from .errors import LoadConfigError
from .spec import DEFAULT_RATE, checked
from .stores import DEFAULT_TIMEOUT

CLIENTS_LOCUSTFILE = Path(__file__).parent / "sink" / "clients.py"
SCHEMES = {"redis": ("redis",), "postgres": ("postgresql", "postgres"), "etcd": ("etcd",)}


def client_options(
    client: Any, url: Any, users: Any, rate: Any, writes: Any, options: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The ``(locust host, load options)`` of a store-client run; a clear error for bad input."""
    if client not in SCHEMES:
        raise LoadConfigError(f"load: client={client!r} is not a store client; accepted: {', '.join(SCHEMES)}")
    if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in SCHEMES[client]:
        schemes = " or ".join(f"{s}://" for s in SCHEMES[client])
        raise LoadConfigError(f"load: client={client!r} needs a {schemes} URL, got {url!r}")
    if writes is not None and writes != 1:
        raise LoadConfigError(f"load: client={client!r} only writes (writes=1); got writes={writes!r}")
    if "locustfile" in options:
        raise LoadConfigError("load: client= runs the built-in store users; pass either client= or locustfile=")
    checked(validate.count, users, "users", minimum=1)
    total = DEFAULT_RATE if rate is None else rate
    accepted = "a number > 0 (total writes per second)"
    checked(validate.instance, total, "rate", kind=(int, float), accepted=accepted)
    if not total > 0:
        raise LoadConfigError(f"load: rate={validate.shown(rate)} must be {accepted}")
    timeout = checked(
        validate.duration, options.pop("request_timeout", DEFAULT_TIMEOUT), "request_timeout", positive=True
    )
    settings = {"url": url, "rate": float(total) / users, "timeout": timeout}
    extra = list(options.pop("locust_args", ()))
    netloc = urllib.parse.urlsplit(url).netloc.split(",")[0].rsplit("@", 1)[-1]
    host = netloc.rsplit(":", 1)[0] or "127.0.0.1"
    options = {
        **options,
        "locustfile": str(CLIENTS_LOCUSTFILE),
        "locust_args": [*extra, "--resiliency-client", json.dumps(settings, separators=(",", ":"))],
    }
    return f"http://{host}", options  # locust's -H; the users connect to the store URL
