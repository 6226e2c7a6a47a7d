"""The small shared parts: a free port, a log tail, ending a process group, bounded waits."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_resiliency import host, waiting
from pytest_resiliency.errors import ConfigError
from pytest_resiliency.targets.service import Service


def test_free_port_can_be_bound() -> None:
    port = host.free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # nobody listens there: binding it works


def test_tail_text_is_the_last_lines_and_empty_for_a_missing_file(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_bytes(b"".join(f"line {i}\n".encode() for i in range(10_000)) + b"\xff bad byte\n")
    assert host.tail_text(log, 3).splitlines() == ["line 9998", "line 9999", "\ufffd bad byte"]
    assert host.tail_text(tmp_path / "missing.log", 3) == ""


def _group(script: str) -> subprocess.Popen[bytes]:
    """A shell in a process group of its own with a child; it says "ready" once its traps are set."""
    proc = subprocess.Popen(["sh", "-c", script], start_new_session=True, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    return proc


def test_end_group_ends_a_group_with_sigterm() -> None:
    proc = _group("sleep 30 & echo ready; wait")
    assert host.group_alive(proc.pid)
    assert host.end_group(proc.pid, grace=5.0) == "SIGTERM"
    proc.communicate(timeout=5)
    assert not host.group_alive(proc.pid)
    assert host.end_group(proc.pid, grace=1.0) is None  # already gone: nothing to do


def test_end_group_kills_what_ignores_sigterm_after_the_grace() -> None:
    proc = _group("trap '' TERM; sleep 30 & echo ready; wait")
    started = time.monotonic()
    assert host.end_group(proc.pid, grace=0.3) == "SIGKILL after SIGTERM was ignored for 0.3s"
    assert time.monotonic() - started >= 0.3
    proc.communicate(timeout=5)
    assert proc.returncode == -signal.SIGKILL
    assert not host.group_alive(proc.pid)


def test_poll_returns_the_first_truthy_value_or_gives_up() -> None:
    values = iter([None, False, "found"])
    assert waiting.poll(lambda: next(values), timeout=5, every=0.001) == "found"
    started = time.monotonic()
    assert waiting.poll(lambda: None, timeout=0.1, every=0.01) is None
    assert 0.1 <= time.monotonic() - started < 2
    started = time.monotonic()
    assert waiting.poll(lambda: None, timeout=30, every=0.01, give_up=lambda: True) is None
    assert time.monotonic() - started < 5  # gave up at once, not after 30 s


def test_poll_lets_an_error_of_the_condition_through() -> None:
    def broken() -> bool:
        raise LookupError("no such alarm")

    with pytest.raises(LookupError, match="no such alarm"):
        waiting.until(broken, timeout=5, every=0.01)


def test_service_commands_are_split_like_a_shell_would() -> None:
    svc = Service(f"{sys.executable} -c 'print(\"a b\")' {{port}}")
    assert svc.command == [sys.executable, "-c", 'print("a b")', str(svc.port)]
    with pytest.raises(ConfigError, match="cannot be split into arguments: No closing quotation"):
        Service(f"{sys.executable} -c 'print(1)")


def test_group_alive_sees_a_zombie_leader_as_gone() -> None:
    proc = subprocess.Popen(["sh", "-c", "exit 0"], start_new_session=True)
    assert waiting.until(lambda: not host.group_alive(proc.pid), timeout=5, every=0.01)  # not reaped yet
    assert proc.wait(timeout=5) == 0
