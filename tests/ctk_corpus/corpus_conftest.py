"""conftest.py of the corpus run (copied next to the experiments by tests/test_ctk_corpus.py).

The systems the experiments were written against, on loopback: one HTTP server (the
tutorials' ``example.com`` and ``localhost:8080``, the documentation's OpenFaaS function with
two instances, the book's exchange-file services), the files the experiments look at, and the
"application" of the documentation's minimal experiment, which re-creates its file.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ENTITIES = {"foo": [{"baz": "hello"}, {"baz": "bonjour"}]}


class Handler(BaseHTTPRequestHandler):
    def _send(self, status: int, body: str, kind: str = "text/plain") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/":
            self._send(200, "hello from 127.0.0.1, 42 of them")
        elif self.path == "/api/v1/entity":
            self._send(200, "{}", "application/json")
        elif self.path == "/api/v1/entities":
            self._send(200, json.dumps(ENTITIES), "application/json")
        elif self.path == "/system/function/astre":
            if self.headers.get("Authorization") != "Basic XYZ":
                self._send(401, "unauthorized")
            else:
                self._send(200 if _instances_alive() else 503, "astre")
        elif self.path in ("/service/", "/resilient-service/"):
            if Path("exchange.dat").exists():
                self._send(200, Path("exchange.dat").read_text())
            else:  # the book's service.py crashes; resilient-service.py answers 503
                self._send(500 if self.path == "/service/" else 503, "no exchange file")
        else:
            self._send(404, "not found")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path == "/function/astre":
            self._send(200 if _instances_alive() else 503, "Paris: sunny")
        else:
            self._send(404, "not found")


def _instances_alive() -> bool:
    alive = 0
    for pidfile in Path("data").glob("instance-*.pid"):
        try:
            os.kill(int(pidfile.read_text()), 0)
            alive += 1
        except (OSError, ValueError):
            pass
    return alive > 0


@pytest.fixture(scope="session")
def corpus_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def _app(stop: threading.Event) -> None:
    """The documentation's minimal experiment says the application re-creates its file."""
    while not stop.wait(0.02):
        path = Path("some/file")
        if not path.exists():
            path.write_text("re-created by the application")


@pytest.fixture(autouse=True)
def corpus_system(corpus_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CORPUS_BASE_URL", corpus_server)
    for folder in ("data", "some", "tests/fixtures"):
        Path(folder).mkdir(parents=True, exist_ok=True)
    Path("data/probes.py").write_text("# a file that exists\n")
    Path("data/unhealthy").unlink(missing_ok=True)
    Path("tests/fixtures/dummy.txt").write_text("dummy\n")
    Path("default.locale.txt").write_text("welcome=hello\n")
    Path("exchange.dat").write_text("exchange data\n")
    Path("exchange.dat.old").unlink(missing_ok=True)
    Path("some/file").write_text("original\n")
    instances = [subprocess.Popen(["sleep", "120"]) for _ in range(2)]
    for number, proc in enumerate(instances, 1):
        Path(f"data/instance-{number}.pid").write_text(str(proc.pid))
    stop = threading.Event()
    app = threading.Thread(target=_app, args=(stop,), daemon=True)
    app.start()
    try:
        yield
    finally:
        stop.set()
        app.join()
        for proc in instances:
            proc.kill()
            proc.wait()
