"""The load's pure parts: argument validation, the wire format, ingest. No locust runs here."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from pytest_resiliency.errors import ConfigError
from pytest_resiliency.load.ingest import Ingest
from pytest_resiliency.load.records import (
    FRAME_HEADER,
    MAX_FRAME,
    encode_frame,
    error_name,
    write_status_for_error,
    write_status_for_http,
)
from pytest_resiliency.load.spec import HTTP_LOCUSTFILE, SINK_LOCUSTFILE, LoadError, make_spec
from pytest_resiliency.timeline import Timeline

URL = "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "ftp://x"}, "url='ftp://x' must be an http:// or https:// URL"),
        ({"url": None}, "url=None must be an http:// or https:// URL string"),
        ({"url": "http://"}, "with a host"),
        ({"users": 0}, "users=0 must be a whole number >= 1"),
        ({"users": 2.5}, "users=2.5 must be a whole number >= 1"),
        ({"users": True}, "users=True"),
        ({"rate": 0}, "rate=0 must be a number > 0"),
        ({"rate": "fast"}, "rate='fast' must be a number > 0"),
        ({"writes": 1.5}, "writes=1.5 must be the share of writes, a number between 0 and 1"),
        ({"writes": -0.1}, "between 0 and 1"),
        ({"spawn_rate": 0}, "spawn_rate=0 must be a number > 0"),
        ({"workers": -1}, "workers=-1 must be a whole number >= 0"),
        ({"remote_workers": "2"}, "remote_workers='2' must be a whole number >= 0"),
        ({"duration": "soon"}, "duration"),
        ({"duration": 0}, "duration=0 must be a finite duration > 0"),
        ({"request_timeout": "-1s"}, "request_timeout"),
        ({"write_path": "orders"}, "write_path='orders' must be a path starting with '/'"),
        ({"read_path": "/orders"}, "must contain '{key}'"),
        ({"locust_args": "--foo"}, "locust_args='--foo' must be a list of strings"),
        ({"locustfile": "/nonexistent/locustfile.py"}, "is not an existing .py file"),
        ({"locustfile": 42}, "locustfile=42 must be a path to a .py file"),
        ({"locustfile": []}, "names no file"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"url": URL, **kwargs}
    with pytest.raises(LoadError) as info:
        make_spec(**args)  # type: ignore[arg-type]
    assert message in str(info.value)
    assert str(info.value).startswith("load: ")
    assert isinstance(info.value, ConfigError), "a bad argument is a usage error of the one family"


def test_rate_and_writes_belong_to_the_builtin_scenario(tmp_path: Path) -> None:
    locustfile = tmp_path / "mine.py"
    locustfile.write_text("")
    with pytest.raises(LoadError, match=r"rate= and writes= drive the built-in scenario only"):
        make_spec(URL, locustfile=locustfile, rate=10)
    spec = make_spec(URL, users=3, locustfile=str(locustfile))
    assert spec.files() == [str(SINK_LOCUSTFILE), str(locustfile.resolve())]
    assert spec.rate is None and spec.writes is None


def test_builtin_command_line() -> None:
    spec = make_spec(URL + "/", users=4, rate=100, writes=0.5, duration="3s")
    cmd = spec.master_command(Path("/tmp/stats"), None)
    assert cmd[cmd.index("-f") + 1] == f"{SINK_LOCUSTFILE},{HTTP_LOCUSTFILE}"
    assert cmd[cmd.index("-u") + 1] == "4" and cmd[cmd.index("-r") + 1] == "4"
    assert cmd[cmd.index("-H") + 1] == URL  # trailing slash dropped
    assert cmd[cmd.index("--run-time") + 1] == "3s"
    assert "--master" not in cmd and "--headless" in cmd
    settings = json.loads(cmd[cmd.index("--resiliency-scenario") + 1])
    assert settings["rate"] == 25.0 and settings["writes"] == 0.5 and settings["single"] is True
    distributed = make_spec(URL, workers=2, remote_workers=1)
    cmd = distributed.master_command(Path("/tmp/stats"), 5599)
    assert cmd[cmd.index("--expect-workers") + 1] == "3"
    assert cmd[cmd.index("--master-bind-port") + 1] == "5599"
    worker = distributed.worker_command("127.0.0.1", 5599)
    assert "--worker" in worker and worker[worker.index("--master-port") + 1] == "5599"


def test_error_names_are_short_and_stable() -> None:
    refused = ConnectionError(
        "HTTPConnectionPool(host='127.0.0.1', port=1): Max retries ([Errno 111] Connection refused)"
    )
    assert error_name(refused) == "ConnectionRefusedError"
    assert error_name(ConnectionResetError(104, "Connection reset by peer")) == "ConnectionResetError"
    assert error_name(TimeoutError("timed out")) == "Timeout"
    assert error_name(None) is None
    assert error_name("x" * 200) == "x" * 80


def test_write_classification_follows_jepsen() -> None:
    assert write_status_for_error(ConnectionRefusedError(111, "Connection refused")) == "fail"
    assert write_status_for_error("NewConnectionError: [Errno 111] Connection refused") == "fail"
    assert write_status_for_error(ConnectionResetError(104, "Connection reset by peer")) == "indeterminate"
    assert write_status_for_error(TimeoutError("read timed out")) == "indeterminate"
    assert [write_status_for_http(s) for s in (200, 201, 204, 400, 500, 503, 502, 504)] == [
        "ok", "ok", "ok", "fail", "fail", "fail", "indeterminate", "indeterminate",
    ]  # fmt: skip


def _raised_in(function: str) -> BaseException:
    """A socket timeout raised inside a function of that name (as geventhttpclient's frames are named)."""
    namespace: dict[str, object] = {}
    exec(f"def {function}():\n    raise TimeoutError('timed out')", namespace)
    try:
        namespace[function]()  # type: ignore[operator]
    except TimeoutError as exc:
        return exc
    raise AssertionError("unreachable")


def test_a_timeout_while_connecting_is_a_connect_timeout_never_sent() -> None:
    connecting = _raised_in("_create_socket")
    assert (error_name(connecting), write_status_for_error(connecting)) == ("ConnectTimeout", "fail")
    waiting = _raised_in("_read_headers")
    assert (error_name(waiting), write_status_for_error(waiting)) == ("Timeout", "indeterminate")
    wrapped = RuntimeError("retries exceeded")  # geventhttpclient's RetriesExceeded keeps the cause as .original
    wrapped.original = connecting  # type: ignore[attr-defined]
    assert write_status_for_error(wrapped) == "fail"


def _frame(*records: list[object]) -> bytes:
    return encode_frame(list(records))


def test_ingest_parses_batches_split_anywhere() -> None:
    timeline = Timeline()
    ingest = Ingest(timeline)
    stream = b"".join(
        [
            _frame(["m", "init", {"pid": 1}]),
            _frame([100.0, 0.004, 1, "GET /", None], [100.1, 0.002, 0, "POST /orders", "ConnectionRefusedError"]),
            _frame(["w", "k1", 100.2, 100.21, "ok"], ["w", "k2", 100.3, None, "fail"]),
            _frame(["w", "k3", 100.4, None, "indeterminate"], [100.5, 0.001, 1, "GET /", None]),
        ]
    )
    for i in range(0, len(stream), 7):  # frames cut at arbitrary places
        ingest.feed(stream[i : i + 7])
    assert (ingest.requests, ingest.successes) == (3, 2)
    assert ingest.errors == {"ConnectionRefusedError": 1}
    assert ingest.meta == {"init": {"pid": 1}}
    assert ingest.writes == {"ok": 1, "fail": 1, "indeterminate": 1}
    evidence = timeline.snapshot()
    assert list(evidence.op_start) == [100.0, 100.1, 100.5]
    assert list(evidence.op_ok) == [1, 0, 1]
    assert evidence.sources() == ["load"]
    assert evidence.write_keys == ("k1", "k2", "k3")
    assert list(evidence.write_status) == [0, 1, 2]


def test_ingest_skips_corrupt_frames_and_records_and_keeps_the_rest() -> None:
    ingest = Ingest(Timeline())
    garbage = b"not a pickle"
    ingest.feed(
        _frame(
            [1.0, 0.1, 1, "a", None],
            "scalar",  # type: ignore[arg-type]
            ["w", "k", 1.0, None, "lost?"],
            [3.0, "slow", 1, "a", None],  # a request whose latency is not a number
            [4.0, 0.1, 0, "a", ["not", "a", "name"]],
            ["w", "k2", "yesterday", None, "ok"],  # a write whose start is not a number
            ["w", 7, 1.0, 2.0, "ok"],
        )
        + FRAME_HEADER.pack(len(garbage))
        + garbage
        + _frame([2.0, 0.1, 1, "a", None], ["w", "k3", 2.0, 2.5, "ok"])
    )
    assert ingest.requests == 2 and ingest.writes == {"ok": 1}
    assert (ingest.bad_frames, ingest.bad_records) == (1, 6)
    assert not ingest.corrupt
    evidence = ingest.timeline.snapshot()  # every column as long as the others: nothing half-added
    assert len(evidence.op_start) == len(evidence.op_latency) == len(evidence.op_error) == 2
    assert list(evidence.write_keys) == ["k3"] and len(evidence.write_start) == len(evidence.write_ack) == 1


def test_ingest_refuses_frames_that_name_code() -> None:
    """The events file is read with every global refused: a frame can hold plain data only."""
    ingest = Ingest(Timeline())
    body = pickle.dumps([[1.0, 0.1, 1, "a", None], Path("/etc/passwd")])
    ingest.feed(FRAME_HEADER.pack(len(body)) + body)
    assert (ingest.requests, ingest.bad_frames) == (0, 1)


def test_ingest_stops_at_an_impossible_frame_length() -> None:
    ingest = Ingest(Timeline())
    ingest.feed(_frame([1.0, 0.1, 1, "a", None]) + FRAME_HEADER.pack(MAX_FRAME + 1) + _frame([2.0, 0.1, 1, "a", None]))
    assert ingest.requests == 1 and ingest.corrupt
    ingest.feed(_frame([3.0, 0.1, 1, "a", None]))  # nothing after a corrupt length can be trusted
    assert ingest.requests == 1


def test_ingest_wait_wakes_on_a_batch() -> None:
    ingest = Ingest(Timeline())
    assert not ingest.wait(lambda: ingest.successes >= 1, 0.01)
    ingest.feed(_frame([1.0, 0.1, 1, "a", None]))
    assert ingest.wait(lambda: ingest.successes >= 1, 0.01)


def test_load_fixture_rejects_bad_input_before_starting_anything(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pytest_resiliency.load.spec import LoadError

        def test_bad(load):
            with pytest.raises(LoadError, match="users=-1 must be a whole number >= 1"):
                load("http://127.0.0.1:9", users=-1)
            with pytest.raises(LoadError, match="unexpected keyword argument 'rps'"):
                load("http://127.0.0.1:9", rps=5)
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)


def test_bad_start_timeout_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(load): pass")
    result = pytester.runpytest("--resiliency-load-start-timeout=soon")
    assert "--resiliency-load-start-timeout" in result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_ledger_keys_are_pending_until_written_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_resiliency.load import sink

    monkeypatch.setattr(sink, "MAX_PENDING", 3)
    ledger = sink.Ledger()
    written, dropped, *in_flight = (ledger.new_key() for _ in range(4))
    ledger.ok(written, 1.0, 2.0)
    ledger.discard(dropped)
    assert [record[1] for record in ledger.abandon()] == in_flight
    assert ledger.abandon() == [], "abandoned once"
    keys = [ledger.new_key() for _ in range(5)]
    abandoned = ledger.abandon()
    assert [r[1] for r in abandoned] == keys[-3:], "the oldest are forgotten past the bound"
    assert all(r[0] == "w" and r[3] is None and r[4] == "indeterminate" for r in abandoned)
