"""Read-back over HTTP: which keys of the ledger does the system under test still hold?

``GET <read_path>`` per key, from a small pool of keep-alive connections: 200 means present,
404 absent. Anything else is retried, and still unclear after the retries it raises: a
read-back that cannot tell must never be counted as a lost write.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import threading
import urllib.parse
from collections.abc import Iterable

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_incrementing

from .errors import LoadError

THREADS = 8
ATTEMPTS = 3


class _Unclear(Exception):
    """An answer that is neither 200 nor 404 (retried)."""


class HttpReadBack:
    """``present(keys)``: the keys of ``keys`` that ``GET base_url + read_path`` answers with 200."""

    def __init__(self, base_url: str, read_path: str, timeout: float) -> None:
        self.parts = urllib.parse.urlsplit(base_url)
        self.prefix = self.parts.path.rstrip("/")
        self.read_path = read_path
        self.timeout = timeout
        self._local = threading.local()
        self._opened: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def present(self, keys: Iterable[str]) -> list[str]:
        wanted = sorted(set(keys))
        with concurrent.futures.ThreadPoolExecutor(THREADS, thread_name_prefix="resiliency-readback") as pool:
            try:
                found = list(pool.map(self._present, wanted))
            finally:
                with self._lock:
                    for conn in self._opened:
                        conn.close()
                    self._opened.clear()
        return [key for key, yes in zip(wanted, found, strict=True) if yes]

    def path(self, key: str) -> str:
        return self.prefix + self.read_path.replace("{key}", urllib.parse.quote(key, safe=""))

    def _present(self, key: str) -> bool:
        path = self.path(key)
        retrying = Retrying(
            stop=stop_after_attempt(ATTEMPTS),
            wait=wait_incrementing(start=0.05, increment=0.05),
            retry=retry_if_exception_type((_Unclear, OSError, http.client.HTTPException)),
            reraise=True,
        )
        try:
            return retrying(self._get, path)
        except (_Unclear, OSError, http.client.HTTPException) as exc:
            answer = str(exc) if isinstance(exc, _Unclear) else f"{type(exc).__name__}: {exc}"
            raise LoadError(f"read_back: GET {path} answered {answer} {ATTEMPTS} times; expected 200 or 404") from None

    def _get(self, path: str) -> bool:
        conn = self._connection()
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            self._local.conn = None  # the next attempt opens a fresh connection
            raise
        if response.status not in (200, 404):
            raise _Unclear(f"HTTP {response.status}")
        return response.status == 200

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self.parts.scheme == "https" else http.client.HTTPConnection
            conn = cls(self.parts.hostname or "", self.parts.port, timeout=self.timeout)
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        return conn
