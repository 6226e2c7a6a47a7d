"""Supervised services: health, restart policies and backoff, log tail, teardown, RTO of kill and pause."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable
from typing import Any

import psutil
import pytest

from pytest_resiliency import faults, probes
from pytest_resiliency.errors import ConfigError
from pytest_resiliency.experiment import Experiment
from pytest_resiliency.targets.service import Service, ServiceError

HTTP = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "{port}"]
HEALTH = "http://127.0.0.1:{port}/"

ServiceFactory = Callable[..., Service]


def test_service_is_ready_when_healthy_and_teardown_stops_the_group(service: ServiceFactory) -> None:
    svc = service(HTTP, name="web", health=HEALTH)
    assert svc.running and svc.healthy()
    probes.http(svc.url)()  # answers now, not "soon"
    pid = svc.pid
    assert pid is not None
    svc.stop()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", svc.port or 0), timeout=0.5).close()


def test_never_healthy_fails_with_the_log_tail(service: ServiceFactory) -> None:
    command = [
        sys.executable,
        "-c",
        "import sys, time; print('booting... no listener here', flush=True); time.sleep(30)",
    ]
    with pytest.raises(ServiceError, match=r"did not become healthy within 0.5s(.|\n)*booting\.\.\. no listener here"):
        service(command, name="mute", port=None, health=9, start_timeout="500ms")


def test_exit_with_restart_never_fails_fast(service: ServiceFactory) -> None:
    started = time.monotonic()
    with pytest.raises(ServiceError, match=r"exited \(exit code 3\) and will not restart(.|\n)*dying"):
        service([sys.executable, "-c", "print('dying'); raise SystemExit(3)"], health=9, restart="never")
    assert time.monotonic() - started < 10


def test_on_failure_policy_restarts_with_backoff(service: ServiceFactory) -> None:
    crash = [sys.executable, "-c", "raise SystemExit(1)"]
    svc = service(crash, name="crashy", restart="on-failure", restart_delay=0.1, backoff=2.0, max_restarts=3)
    assert svc.wait_for(lambda: svc.gave_up, 10)
    starts = [e["at"] for e in svc.events if e["event"] == "started"]
    exits = [e["at"] for e in svc.events if e["event"] == "exited"]
    assert len(starts) == 4  # the first start and three restarts, then the limit
    delays = [start - exit for exit, start in zip(exits, starts[1:])]
    assert delays[0] == pytest.approx(0.1, abs=0.08)
    assert delays[1] == pytest.approx(0.2, abs=0.1)
    assert delays[2] == pytest.approx(0.4, abs=0.15)


def test_on_failure_policy_does_not_restart_a_clean_exit(service: ServiceFactory) -> None:
    svc = service([sys.executable, "-c", "pass"], restart="on-failure", restart_delay=0.05)
    assert svc.wait_for(lambda: svc.gave_up, 10)
    assert svc.restarts == 0


def test_log_tail_is_attached_to_the_experiment(service: ServiceFactory, experiment: Experiment) -> None:
    svc = service([sys.executable, "-u", "-c", "print('hello from svc'); import time; time.sleep(30)"], name="talker")
    deadline = time.monotonic() + 5  # a log file has no event to await: poll it, bounded
    while "hello from svc" not in svc.log_tail() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "logs:talker" in experiment.attachments
    assert "hello from svc" in experiment.resolved_attachments()["logs:talker"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"restart": "sometimes"}, "restart='sometimes' is not accepted; use one of always, on-failure, never"),
        ({"restart_delay": -1}, "restart_delay=-1 must be a finite duration >= 0"),
        ({"backoff": 0.5}, "backoff=0.5 must be a number >= 1"),
        ({"health": "ftp://x"}, "a string check must be an http(s):// URL or tcp://HOST:PORT"),
        ({"cwd": "/nonexistent/dir"}, "cwd='/nonexistent/dir' is not a directory"),
    ],
)
def test_bad_service_options_are_clear_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Service(HTTP, **options)


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServiceError, match=rf"port {port} is already in use on 127.0.0.1"):
            Service(HTTP, port=port)


@pytest.mark.slow
def test_kill_rto_is_restart_delay_plus_startup(service: ServiceFactory, experiment: Experiment) -> None:
    svc = service(HTTP, name="web", health=HEALTH, restart_delay=1.0)
    experiment.monitor(probes.http(svc.url, timeout="200ms"), every="20ms")
    assert svc.wait_for(lambda: False, 0.3) is False  # a short baseline of successes
    with faults.kill(svc):
        pass
    assert experiment.wait_recovered(timeout="15s")
    rto = experiment.measure().rto
    startup = _startup_time(svc)
    assert rto is not None
    # 1 s restart delay + the measured start-up, within the probe period and scheduling noise.
    assert 1.0 <= rto <= 1.0 + startup + 0.5, (rto, startup)


@pytest.mark.slow
def test_pause_rto_is_the_pause_duration(service: ServiceFactory, experiment: Experiment) -> None:
    svc = service(HTTP, name="web", health=HEALTH)
    experiment.monitor(probes.http(svc.url, timeout="100ms"), every="20ms")
    assert svc.wait_for(lambda: False, 0.3) is False
    with faults.pause(svc):
        assert svc.wait_for(lambda: False, 2.0) is False  # stuck for 2 s
    assert experiment.wait_recovered(timeout="10s")
    rto = experiment.measure().rto
    assert rto is not None
    assert rto == pytest.approx(2.0, abs=0.35), rto
    assert svc.restarts == 0  # a paused process is not dead: the supervisor left it alone


def _startup_time(svc: Service) -> float:
    """From the supervisor's 'started' event to the first healthy answer, measured afresh."""
    exits = [e for e in svc.events if e["event"] == "exited"]
    starts = [e for e in svc.events if e["event"] == "started"]
    assert exits and len(starts) >= 2
    downtime = float(starts[-1]["at"]) - float(exits[-1]["at"])
    return max(0.05, downtime - 1.0) + 0.5  # generous: python start-up on a busy box
