"""The serverless runner: the Lambda handler end to end against the embedded moto server's S3.

The handler runs in a subprocess (as in Lambda: its own interpreter, AWS_ENDPOINT_URL and
credentials from the environment), fetches a zipped suite, runs pytest on it and uploads
the three reports; the summary it returns is checked against what the suite did.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_resiliency.serverless.event import EventError, parse

if TYPE_CHECKING:
    from pytest_resiliency.aws.moto_server import MotoServer

SUITE = '''
import time
import pytest
from pytest_resiliency import faults


def outage(experiment, down):
    """Operations a client saw: failing for ``down`` seconds after the fault, then 1.5 s of successes."""
    with faults.custom(lambda: None, lambda: None, name="blip"):
        t0 = time.time()
        for i in range(40):
            at = t0 + i * 0.05
            experiment.record_operation(at, 0.001, at - t0 >= down, "GET /", "client")


@pytest.mark.resiliency(rto="5s")
def test_recovers_in_budget(experiment):
    outage(experiment, 0.2)


@pytest.mark.resiliency(rto="100ms")
def test_breaches(experiment):
    outage(experiment, 0.5)


def test_not_selected():
    pass
'''

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


@pytest.fixture
def s3(resiliency_moto_server: MotoServer) -> tuple[Any, str, str]:
    """A fresh bucket on this worker's moto server: (client, bucket, endpoint)."""
    import boto3  # type: ignore[import-untyped,unused-ignore]

    client = boto3.client(
        "s3",
        endpoint_url=resiliency_moto_server.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    bucket = f"suites-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return client, bucket, resiliency_moto_server.url


def zipped(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def run_handler(event: dict[str, Any], endpoint: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import json, sys\n"
        "from pytest_resiliency.serverless.handler import handler\n"
        "print(json.dumps(handler(json.loads(sys.argv[1]), None)))\n"
    )
    env = {**os.environ, **CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1"}
    return subprocess.run(
        [sys.executable, "-c", code, json.dumps(event)], env=env, capture_output=True, text=True, timeout=180
    )


@pytest.mark.slow
def test_handler_runs_the_suite_and_uploads_three_reports(s3: tuple[Any, str, str]) -> None:
    client, bucket, endpoint = s3
    client.put_object(Bucket=bucket, Key="suites/demo.zip", Body=zipped({"tests/test_demo.py": SUITE}))
    event = {
        "bucket": bucket,
        "suite": "suites/demo.zip",
        "markers": "resiliency",
        "args": ["-p", "no:locust", "-p", "no:benchmark", "-p", "no:hypothesispytest"],
        "run_id": "run-1",
    }
    done = run_handler(event, endpoint)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    listed = client.list_objects_v2(Bucket=bucket, Prefix="reports/run-1/")["Contents"]
    assert sorted(o["Key"] for o in listed) == [
        "reports/run-1/journal.json",
        "reports/run-1/junit.xml",
        "reports/run-1/report.html",
    ]
    assert all(o["Size"] > 200 for o in listed)
    assert summary["reports"] == {
        "junit": f"s3://{bucket}/reports/run-1/junit.xml",
        "html": f"s3://{bucket}/reports/run-1/report.html",
        "journal": f"s3://{bucket}/reports/run-1/journal.json",
    }
    assert summary["exit_code"] == 1 and summary["status"] == "failed"
    assert summary["counts"] == {"tests": 2, "passed": 1, "failed": 1, "errors": 0, "skipped": 0}
    assert summary["outcomes"] == {"breach": 1, "pass": 1}
    assert summary["worst_rto_test"] == "tests/test_demo.py::test_breaches"
    assert 0.45 <= summary["worst_rto_s"] <= 0.6
    assert len(summary["breaches"]) == 1 and "RTO" in summary["breaches"][0]
    assert summary["timed_out"] is False and summary["missing_reports"] == []
    journal = json.loads(client.get_object(Bucket=bucket, Key="reports/run-1/journal.json")["Body"].read())
    assert [t["nodeid"] for t in journal["tests"]] == [
        "tests/test_demo.py::test_breaches",
        "tests/test_demo.py::test_recovers_in_budget",
    ]


def test_handler_fetches_a_prefix_and_refuses_a_zip_slip(s3: tuple[Any, str, str]) -> None:
    from pytest_resiliency.serverless import s3io

    client, bucket, _ = s3
    client.put_object(Bucket=bucket, Key="suites/tree/test_a.py", Body=b"def test_a(): pass\n")
    client.put_object(Bucket=bucket, Key="suites/tree/sub/conftest.py", Body=b"\n")
    into = Path(tempfile.mkdtemp())
    try:
        written = s3io.fetch_suite(client, parse({"bucket": bucket, "suite": "suites/tree"}), into)
        assert sorted(written) == ["sub/conftest.py", "test_a.py"]
        assert (into / "sub" / "conftest.py").is_file()
        client.put_object(Bucket=bucket, Key="suites/evil.zip", Body=zipped({"../../evil.py": "boom"}))
        with pytest.raises(EventError, match=r"refusing path '../../evil.py'"):
            s3io.fetch_suite(client, parse({"bucket": bucket, "suite": "suites/evil.zip"}), into / "x")
        with pytest.raises(EventError, match="does not exist"):
            s3io.fetch_suite(client, parse({"bucket": bucket, "suite": "suites/missing.zip"}), into / "y")
        with pytest.raises(EventError, match="holds no objects"):
            s3io.fetch_suite(client, parse({"bucket": bucket, "suite": {"prefix": "nothing/"}}), into / "z")
    finally:
        shutil.rmtree(into)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ("run", "the event must be a JSON object"),
        ({"suite": "s.zip"}, r"event\['bucket'\] must be a non-empty string"),
        ({"bucket": "b"}, r"event\['suite'\] must be an S3 key of a zip"),
        ({"bucket": "b", "suite": {"tar": "x"}}, r"event\['suite'\] must be"),
        ({"bucket": "b", "suite": "s.zip", "marker": "x"}, "unknown event key.s. marker; accepted: bucket"),
        ({"bucket": "b", "suite": "s.zip", "args": "-x"}, r"event\['args'\] must be a list of strings"),
        ({"bucket": "b", "suite": "s.zip", "args": ["--html=x"]}, "may not contain '--html=x'"),
        ({"bucket": "b", "suite": "s.zip", "args": ["-mnot aws"]}, "may not contain '-mnot aws'"),
        ({"bucket": "b", "suite": "s.zip", "args": ["-vm", "aws"]}, "may not contain '-vm'"),
        ({"bucket": "b", "suite": "s.zip", "args": ["-qsmaws"]}, "may not contain '-qsmaws'"),
        ({"bucket": "b", "suite": "s.zip", "path": "../up"}, "must be a relative path inside the suite"),
        ({"bucket": "b", "suite": "s.zip", "run_id": "a/b"}, "must be letters, digits"),
        ({"bucket": "b", "suite": "s.zip", "timeout": 0}, "must be a number of seconds > 0"),
    ],
)
def test_bad_events_are_refused_naming_the_key(event: Any, message: str) -> None:
    with pytest.raises(EventError, match=message):
        parse(event)


def test_short_options_that_only_look_like_m_are_accepted() -> None:
    """``-kmain`` selects by name and ``-rm`` is a report-chars value: neither sets a mark expression."""
    assert parse({"bucket": "b", "suite": "s.zip", "args": ["-kmain", "-rm", "-x", "--maxfail=2"]}).args == (
        "-kmain",
        "-rm",
        "-x",
        "--maxfail=2",
    )


def test_event_defaults() -> None:
    request = parse({"bucket": "b", "suite": "/suites/x.zip", "reports_prefix": "out"})
    assert (request.suite_key, request.suite_prefix) == ("suites/x.zip", None)
    assert (request.reports_bucket, request.reports_prefix, request.path) == ("b", "out/", ".")
    assert parse({"bucket": "b", "suite": "suites/x"}).suite_prefix == "suites/x/"
    assert parse({"bucket": "b", "suite": "s.zip"}).reports_prefix.startswith("reports/")
