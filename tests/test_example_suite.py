"""The example suite's own helpers (``resiliency_tests/conftest.py``): evidence counts and test order.

``await_evidence`` holds the suite's faults until the load has seen enough; here it is fed
request records through the load's real ``Ingest`` (the same parser the locust sink's frames go
through), from a thread, as locust's events arrive in a run.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_resiliency.load.ingest import Ingest
from pytest_resiliency.load.records import encode_frame, request_record
from pytest_resiliency.timeline import Timeline
from resiliency_tests.conftest import await_evidence

ROOT = Path(__file__).resolve().parents[1]


class FakeTraffic:
    """What ``await_evidence`` reads of a ``Traffic``: its ingest and whether it runs.

    A stand-in for locust (which must never be imported in the pytest process): the records
    are the sink's own frames, parsed by the real ingest.
    """

    def __init__(self) -> None:
        self.ingest = Ingest(Timeline())
        self.running = True

    def requests(self, ok: int, failed: int) -> None:
        now = time.time()
        records = [request_record(now, 0.001, True, "GET /orders/{key}", None) for _ in range(ok)]
        records += [request_record(now, 0.5, False, "GET /orders/{key}", "timeout") for _ in range(failed)]
        self.ingest.feed(encode_frame(records))


def later(seconds: float, action: Any) -> threading.Thread:
    thread = threading.Timer(seconds, action)
    thread.start()
    return thread


def test_returns_once_the_counts_since_the_call_are_seen() -> None:
    traffic = FakeTraffic()
    traffic.requests(ok=500, failed=50)  # before the call: not counted

    def five_batches() -> None:
        for _ in range(5):
            traffic.requests(ok=3, failed=4)

    feeder = later(0.05, five_batches)
    start = time.monotonic()
    await_evidence(traffic, "20 timeouts", failures=20, successes=10, timeout=5)  # type: ignore[arg-type]
    assert time.monotonic() - start < 4
    assert traffic.ingest.requests - traffic.ingest.successes == 70  # all 5 batches were in: 20 new failures
    feeder.join()


def test_a_count_not_reached_fails_the_test_naming_what_was_awaited() -> None:
    traffic = FakeTraffic()
    traffic.requests(ok=100, failed=0)
    feeder = later(0.02, lambda: traffic.requests(ok=5, failed=2))  # during the wait: counted
    with pytest.raises(pytest.fail.Exception) as failed:
        await_evidence(traffic, "30 refused writes", failures=30, timeout=0.3)  # type: ignore[arg-type]
    feeder.join()
    assert str(failed.value) == "30 refused writes: the load saw 5 successes and 2 failures in 0.3s (needed 0 and 30)"


def test_a_stopped_load_ends_the_wait_at_once_and_says_so() -> None:
    traffic = FakeTraffic()
    traffic.running = False
    start = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match=r"needed 100 and 0\); the load stopped"):
        await_evidence(traffic, "100 requests", successes=100, timeout=10)  # type: ignore[arg-type]
    assert time.monotonic() - start < 1


def test_the_suite_runs_its_longest_experiments_first(pytester: pytest.Pytester) -> None:
    """The locust experiments, then AWS, then the rest: the order xdist hands them out in."""
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--rootdir={ROOT}", "-c", str(ROOT / "pytest.ini"), "--collect-only", "-q",
        str(ROOT / "resiliency_tests"),
    )  # fmt: skip
    ids = [line for line in result.outlines if "::" in line]
    tiers = [2 if "/datastores/" in i else 1 if ("/aws/" in i or "/ctk/" in i) else 0 for i in ids]
    assert len(ids) >= 20 and tiers == sorted(tiers), ids
