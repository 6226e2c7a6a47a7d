"""Service features for real servers: named ports, placeholders everywhere, readiness, groups, users, logs."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_resiliency.errors import ConfigError
from pytest_resiliency.targets.fixtures import ServiceFactory
from pytest_resiliency.targets.service import Service, ServiceError, free_port

PY = sys.executable

# Listens on $PEER_PORT at once; opens its main port only once the other member's peer port accepts.
MEMBER = r"""
import os, socket, sys, time, http.server, threading
peer = socket.socket(); peer.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
peer.bind(("127.0.0.1", int(os.environ["PEER_PORT"]))); peer.listen()
while True:
    try:
        socket.create_connection(("127.0.0.1", int(os.environ["OTHER_PEER"])), timeout=0.2).close(); break
    except OSError:
        time.sleep(0.02)
print("joined", flush=True)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), http.server.SimpleHTTPRequestHandler).serve_forever()
"""


def _member(service: ServiceFactory, name: str, mine: int, other: int, **options: Any) -> Service:
    return service.define(
        [PY, "-c", MEMBER, "{port}"],
        name=name,
        ports={"peer": mine},
        env={"PEER_PORT": "{port:peer}", "OTHER_PEER": str(other)},
        health="http://127.0.0.1:{port}/",
        **options,
    )


def test_a_group_starts_together_where_one_by_one_never_gets_ready(service: ServiceFactory) -> None:
    a_peer, b_peer = free_port(), free_port()
    lonely = _member(service, "lonely", a_peer, b_peer, start_timeout="700ms")
    with pytest.raises(ServiceError, match=r"did not become healthy within 0\.7s"):
        lonely.start()  # its peer is not started: one by one, a cluster never forms
    a = _member(service, "a", a_peer, b_peer)
    b = _member(service, "b", b_peer, a_peer)
    group = service.group([a, b], name="pair")
    assert [m.name for m in group] == ["a", "b"] and group["b"] is b
    assert a.healthy() and b.healthy()
    assert a.env["PEER_PORT"] == str(a.ports["peer"]) == str(a_peer)
    assert a.wait_for_log("^joined$", timeout="1s").text == "joined"


def test_group_ready_check_and_dict_members(service: ServiceFactory, tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    sleeper = [PY, "-c", "import time; time.sleep(60)"]
    seen: list[int] = []

    def ready() -> bool:
        seen.append(1)
        if len(seen) == 3:
            flag.touch()
        return flag.exists()

    group = service.group([{"command": sleeper, "name": "x"}, {"command": sleeper, "name": "y"}], ready=ready)
    assert len(group) == 2 and len(seen) >= 3


def test_group_with_a_member_that_exits_fails_fast_with_its_log(service: ServiceFactory) -> None:
    started = time.monotonic()
    dying = {"command": [PY, "-c", "print('bye'); raise SystemExit(2)"], "name": "dying", "restart": "never"}
    with pytest.raises(ServiceError, match=r"(exited \(exit code 2\)|did not become ready)(.|\n)*bye"):
        service.group(
            [dying, {"command": [PY, "-c", "import time; time.sleep(60)"], "name": "ok"}], ready=lambda: False
        )
    assert time.monotonic() - started < 10


def test_placeholders_in_files_env_and_tcp_health(service: ServiceFactory, tmp_path: Path) -> None:
    conf = tmp_path / "server.conf"
    script = (
        "import sys, json, http.server; port = int(open(sys.argv[1]).read().split('=')[1]); "
        "http.server.HTTPServer(('127.0.0.1', port), http.server.SimpleHTTPRequestHandler).serve_forever()"
    )
    svc = service(
        [PY, "-c", script, str(conf)],
        name="conf",
        files={conf: "listen={port}\n"},
        ports=["admin"],
        env={"ADMIN": "{port:admin}", "JSON": '{"literal": "braces stay"}'},
        health="tcp://127.0.0.1:{port}",
    )
    assert conf.read_text() == f"listen={svc.port}\n"
    assert svc.env["ADMIN"] == str(svc.ports["admin"]) and svc.env["JSON"] == '{"literal": "braces stay"}'
    assert svc.expand("{port}/{port:admin}") == f"{svc.port}/{svc.ports['admin']}"


def test_ready_callable_is_what_start_waits_for(service: ServiceFactory, tmp_path: Path) -> None:
    marker = tmp_path / "ready"
    command = [
        PY,
        "-c",
        f"import time, pathlib; time.sleep(0.3); pathlib.Path({str(marker)!r}).touch(); time.sleep(60)",
    ]
    svc = service(command, name="slowboot", ready=lambda: marker.exists())
    assert marker.exists() and svc.running


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_user_drops_privileges_and_owns_its_files(service: ServiceFactory, tmp_path: Path) -> None:
    out = tmp_path / "work"
    out.mkdir()
    os.chmod(tmp_path, 0o755)
    conf = out / "c.txt"
    svc = service(["sleep", "60"], name="unpriv", user="nobody", files={conf: "x"})
    assert svc.pid is not None
    uids = Path(f"/proc/{svc.pid}/status").read_text().split("Uid:")[1].split()[:2]
    assert uids == ["65534", "65534"]
    assert conf.stat().st_uid == 65534


def test_a_command_that_cannot_start_fails_fast_naming_why(service: ServiceFactory, tmp_path: Path) -> None:
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\n")
    with pytest.raises(
        ServiceError, match=r"exited \(cannot start .*not-executable.sh: \[Errno 13\] Permission denied"
    ):
        service([str(script)], name="noexec")


def test_stop_signal_is_sent_at_teardown(service: ServiceFactory) -> None:
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGINT, lambda *a: (print('got SIGINT', flush=True), sys.exit(0)))\n"
        "print('up', flush=True)\ntime.sleep(60)\n"
    )
    svc = service([PY, "-c", script], name="graceful", stop_signal="SIGINT")
    svc.wait_for_log("^up$", timeout="5s")
    svc.stop()
    assert "got SIGINT" in svc.log_tail()


def test_wait_for_log_since_and_timeout(service: ServiceFactory) -> None:
    script = "import time\nfor i in range(3):\n    print('tick', i, flush=True); time.sleep(0.1)\ntime.sleep(60)"
    svc = service([PY, "-c", script], name="ticker", log_tail=2)
    first = svc.wait_for_log(r"tick 0", timeout="5s")
    later = svc.wait_for_log(r"tick \d", timeout="5s", since=first.offset)
    assert later.text == "tick 1" and later.offset > first.offset
    assert [line.text for line in svc.log_lines(r"^tick")][:1] == ["tick 0"]
    svc.wait_for_log("tick 2", timeout="5s")
    with pytest.raises(ServiceError, match=r"no log line matching 'never' within 0.2s; log tail:\ntick 1\ntick 2"):
        svc.wait_for_log("never", timeout="200ms")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ports": ["bad name"]}, "ports: name 'bad name' must be a word"),
        ({"ports": "peer"}, "ports='peer' must be a list of names or a mapping"),
        ({"env": {"X": "{port:peer}"}}, "{port:peer} names no port of service"),
        ({"user": "no-such-user-here"}, "user='no-such-user-here' is not an account on this machine"),
        ({"log_tail": 0}, "log_tail=0 must be a whole number >= 1"),
        ({"stop_signal": "SIGNOPE"}, "stop_signal='SIGNOPE' is not a signal name"),
        ({"ready": "ftp://x"}, "ready='ftp://x': a string check must be an http(s):// URL or tcp://HOST:PORT"),
    ],
)
def test_bad_options_for_real_servers_are_clear_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("{", r"\{")):
        Service([PY, "-c", "pass"], **options)


def test_bad_group_members_are_clear_errors(service: ServiceFactory) -> None:
    with pytest.raises(ConfigError, match="must be a Service"):
        service.group(["echo hi"])  # type: ignore[list-item]  # the wrong type on purpose
    with pytest.raises(ConfigError, match="needs a non-empty list of services"):
        service.group([])
    one: Callable[[], Any] = lambda: service.define([PY, "-c", "pass"], name="same")  # noqa: E731
    with pytest.raises(ConfigError, match="member names must be unique"):
        service.group([one(), one()])
