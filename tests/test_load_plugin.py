"""The load as pytest sees it: attachments in the reports, nothing left behind after any outcome."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

pytestmark = pytest.mark.slow

TEST_WITH_LOAD = """
import json, os, sys, time
import pytest
sys.path.insert(0, {tests!r})
from load_servers import OrdersServer

@pytest.mark.resiliency(rto="5s")
def test_body(load, experiment):
    server = OrdersServer()
    traffic = load(server.url, users=2, rate=40)
    # 40 requests at 30 % writes: a POST among them but with probability 0.7**40 (6e-7), so the
    # stats name both methods (5 requests missed every write in 17 % of runs).
    traffic.wait_steady(successes=40)
    with open({pids!r} + ".tmp", "w") as f:
        json.dump(traffic.pids, f)
    os.replace({pids!r} + ".tmp", {pids!r})  # appears complete or not at all
    {body}
"""


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def _wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _alive(pids)


def test_failing_body_stops_the_load_and_reports_locust_stats(pytester: pytest.Pytester) -> None:
    pids = pytester.path / "pids.json"
    pytester.makepyfile(
        TEST_WITH_LOAD.format(tests=str(Path(__file__).parent), pids=str(pids), body="assert False, 'body failed'")
    )
    result = pytester.runpytest("--resiliency-json=journal.json")
    result.assert_outcomes(failed=1)
    assert "locust" not in sys.modules
    assert _wait_gone(json.loads(pids.read_text()), 1) == []
    text = (pytester.path / "journal.json").read_text()
    assert '"locust"' in text
    journal = json.loads(text)
    found: dict[str, Any] | None = _find(journal, "locust")
    assert found and found["users"] == 2 and found["requests_ingested"] > 0
    assert {entry["method"] for entry in found["stats"]} == {"GET", "POST"}


def _find(data: object, key: str) -> dict[str, object] | None:
    if isinstance(data, dict):
        if isinstance(data.get(key), dict):
            return data[key]  # type: ignore[no-any-return]
        items: list[object] = list(data.values())
    elif isinstance(data, list):
        items = list(data)
    else:
        return None
    for item in items:
        found = _find(item, key)
        if found is not None:
            return found
    return None


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "sigkill"])
def test_no_locust_left_when_pytest_is_interrupted_or_killed(pytester: pytest.Pytester, sig: signal.Signals) -> None:
    pids = pytester.path / "pids.json"
    pytester.makepyfile(TEST_WITH_LOAD.format(tests=str(Path(__file__).parent), pids=str(pids), body="time.sleep(60)"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"],
        cwd=pytester.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not pids.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        started = json.loads(pids.read_text())
        assert _alive(started)
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # Ctrl-C: pytest's teardown stops it; SIGKILL: the sink notices its parent is gone.
    assert _wait_gone(started, 15) == []
