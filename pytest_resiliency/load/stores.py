"""Store clients for keyed writes and read-back: Redis (redis-py), PostgreSQL (psycopg), etcd (v3 JSON gateway).

One small class per store with the same four members, used by the open-loop writer in
pytest, by the locust users out of process and by the datastore targets' readers:

* ``put(key)`` writes one key (raises on failure; returning means acknowledged),
* ``present(keys)`` returns the keys of ``keys`` that are stored (for ``verify_writes``),
* ``all_keys()`` a full scan of what the store holds (independent truth for benchmarks),
* ``classify`` the error classifier for the writer's ledger.

Each client is built from a URL (``redis://127.0.0.1:6379/0``,
``postgresql://postgres@127.0.0.1:5432/postgres``, ``etcd://127.0.0.1:2379,127.0.0.1:22379``),
so the same scenario runs in pytest and in a locust worker on another host. redis-py and
psycopg are imported when a client is made, never at import time.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from . import classifiers
from .errors import StoreError as StoreError  # importable from here, as before

DEFAULT_TIMEOUT = 2.0
PREFIX = "rz"  # keys the writers make start with it, so a full scan can tell them from anything else


def _need(module: str, package: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise StoreError(
            f"the {module} client is not installed: pip install '{package}' (or pytest-resiliency[datastores])"
        ) from None


class RedisStore:
    """redis-py, no client-side retries: each call is one attempt, so each outcome is evidence."""

    classify = staticmethod(classifiers.redis)
    kind = "redis"

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        redis = _need("redis", "redis>=5")
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.url = url
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
            health_check_interval=0,
        )

    def put(self, key: str) -> None:
        self.client.set(key, "1")

    def present(self, keys: Iterable[str]) -> list[str]:
        wanted = list(keys)
        found: list[str] = []
        for i in range(0, len(wanted), 1000):
            chunk = wanted[i : i + 1000]
            pipe = self.client.pipeline(transaction=False)
            for key in chunk:
                pipe.exists(key)
            found += [k for k, n in zip(chunk, pipe.execute(), strict=True) if n]
        return found

    def all_keys(self) -> list[str]:
        return sorted(k.decode() if isinstance(k, bytes) else str(k) for k in self.client.scan_iter(count=1000))

    def close(self) -> None:
        self.client.close()


class PostgresStore:
    """psycopg 3, one autocommit connection per thread: an INSERT is its own transaction."""

    classify = staticmethod(classifiers.psycopg)
    kind = "postgres"

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT, table: str = "resiliency_ledger") -> None:
        _need("psycopg", "psycopg[binary]>=3.1")
        if not table.replace("_", "").isalnum():
            raise StoreError(f"table={table!r} must be a plain identifier (letters, digits, _)")
        self.url = url
        self.table = table
        self.timeout = timeout
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()

    def connect(self) -> Any:
        import psycopg

        conn = psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=max(2, round(self.timeout)),  # libpq's minimum is 2 s
            options=f"-c statement_timeout={int(self.timeout * 1000)}",
        )
        with self._lock:
            self._all.append(conn)
        return conn

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._local.conn = self.connect()
        return conn

    def create_table(self) -> None:
        with self.connect() as conn:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} (key text PRIMARY KEY, at timestamptz DEFAULT now())"
            )

    def put(self, key: str) -> None:
        try:
            self._conn().execute(f"INSERT INTO {self.table} (key) VALUES (%s)", (key,))
        except Exception:
            conn, self._local.conn = getattr(self._local, "conn", None), None
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
            raise

    def present(self, keys: Iterable[str]) -> list[str]:
        with self.connect() as conn:
            rows = conn.execute(f"SELECT key FROM {self.table} WHERE key = ANY(%s)", (list(keys),)).fetchall()
        return [r[0] for r in rows]

    def all_keys(self) -> list[str]:
        with self.connect() as conn:
            return sorted(r[0] for r in conn.execute(f"SELECT key FROM {self.table}").fetchall())

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close()


class EtcdStore:
    """etcd's v3 JSON gateway over HTTP (no extra dependency), failing over between members.

    A member that refuses the connection (it is down) is skipped to the next one, like the
    etcd client's balancer; any other error is the outcome of the write.
    """

    classify = staticmethod(classifiers.etcd)
    kind = "etcd"

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "etcd" or not parts.netloc:
            raise StoreError(f"etcd url {url!r} must look like etcd://HOST:PORT[,HOST:PORT...]")
        self.url = url
        self.endpoints = [f"http://{hostport}" for hostport in parts.netloc.split(",")]
        self.timeout = timeout
        self._next = 0

    def call(self, path: str, body: dict[str, Any], endpoint: str | None = None) -> dict[str, Any]:
        order = [endpoint] if endpoint else self._order()
        last: BaseException | None = None
        for base in order:
            try:
                return self._post(base, path, body)
            except urllib.error.URLError as exc:
                if not isinstance(exc, urllib.error.HTTPError) and classifiers._refused(exc):
                    last = exc  # nothing was sent: the next member may take it
                    continue
                raise
        assert last is not None
        raise last

    def _order(self) -> list[str]:
        start = self._next % len(self.endpoints)
        return self.endpoints[start:] + self.endpoints[:start]

    def _post(self, base: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer: dict[str, Any] = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                data = json.loads(raw)
            except ValueError:
                data = {}
            message = str(data.get("error") or data.get("message") or raw[:200].decode(errors="replace"))
            raise classifiers.EtcdError(exc.code, message, data.get("code")) from None
        return answer

    def put(self, key: str) -> None:
        self.call("/v3/kv/put", {"key": _b64(key), "value": _b64("1")})

    def _range(self, key: str, range_end: str) -> Iterator[str]:
        body = {"key": _b64(key), "range_end": _b64(range_end), "keys_only": True}
        for kv in self.call("/v3/kv/range", body).get("kvs", []):
            yield base64.b64decode(kv["key"]).decode()

    def present(self, keys: Iterable[str]) -> list[str]:
        wanted = set(keys)
        return sorted(wanted & set(self.all_keys()))

    def all_keys(self) -> list[str]:
        return sorted(self._range("\0", "\0"))  # key "\0" with range_end "\0": every key

    def status(self, endpoint: str) -> dict[str, Any]:
        """``/v3/maintenance/status`` of one member: its id, the leader it follows, raft term."""
        return self.call("/v3/maintenance/status", {}, endpoint=endpoint)

    def close(self) -> None:
        pass


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


STORES: dict[str, Callable[..., Any]] = {
    "redis": RedisStore,
    "postgres": PostgresStore,
    "postgresql": PostgresStore,
    "etcd": EtcdStore,
}


def connect(url: str, **options: Any) -> Any:
    """A store client for ``url`` by its scheme: ``redis://``, ``postgresql://``, ``etcd://``."""
    if not isinstance(url, str):
        raise StoreError(f"store url {url!r} must be a string such as redis://127.0.0.1:6379/0")
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in STORES:
        raise StoreError(f"store url {url!r}: scheme {scheme!r} is not one of redis://, postgresql://, etcd://")
    return STORES[scheme](url, **options)
