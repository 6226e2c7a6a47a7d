"""AWS Lambda handler: fetch a suite from S3, run pytest on it in /tmp, upload the reports, summarise.

``pytest_resiliency.serverless.handler.handler`` is the function to configure. pytest runs
in a subprocess (a fresh interpreter per invocation: no state leaks between warm starts)
with the JUnit XML, pytest-html and JSON journal reports written under /tmp and uploaded
to ``s3://reports_bucket/reports_prefix``. The S3 client is boto3's default, so
``AWS_ENDPOINT_URL`` (moto, LocalStack) is honoured. Before the Lambda deadline pytest gets
SIGINT (its faults revert and the rollbacks run), then SIGKILL.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import results, s3io
from .event import RunRequest, parse

DEFAULT_TIMEOUT = 840.0  # no Lambda context: 14 minutes, under Lambda's 15
DEADLINE_MARGIN = 30.0  # seconds kept before the Lambda deadline to upload the reports
INTERRUPT_GRACE = 20.0  # after SIGINT, how long pytest has to roll back before SIGKILL
REPORTS = {"junit": "junit.xml", "html": "report.html", "journal": "journal.json"}


def _budget(request: RunRequest, context: Any) -> float:
    seconds = request.timeout or DEFAULT_TIMEOUT
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        seconds = min(seconds, remaining() / 1000.0 - DEADLINE_MARGIN - INTERRUPT_GRACE)
    return max(seconds, 1.0)


def command(request: RunRequest, suite: Path, reports: Path) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(suite / request.path),
        "-p",
        "no:cacheprovider",
        f"--junitxml={reports / REPORTS['junit']}",
        f"--html={reports / REPORTS['html']}",
        "--self-contained-html",
        f"--resiliency-json={reports / REPORTS['journal']}",
    ]
    if request.markers:
        cmd += ["-m", request.markers]
    return cmd + list(request.args)


def run_pytest(cmd: list[str], cwd: Path, home: Path, timeout: float, log: Path) -> tuple[int, bool]:
    """Run pytest in its own session; on ``timeout`` SIGINT it, then SIGKILL. Returns (exit code, timed out)."""
    env = {**os.environ, "HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            return proc.wait(timeout=timeout), False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=INTERRUPT_GRACE)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            return proc.returncode, True


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Run the suite the event names; return the summary (counts, exit code, report keys, worst RTO)."""
    import boto3  # type: ignore[import-untyped,unused-ignore]

    request = parse(event)
    started = time.time()
    s3 = boto3.client("s3")
    workdir = Path(tempfile.mkdtemp(prefix="resiliency-run-"))
    try:
        suite, reports, home = workdir / "suite", workdir / "reports", workdir / "home"
        for directory in (suite, reports, home):
            directory.mkdir()
        s3io.fetch_suite(s3, request, suite)
        log = workdir / "pytest.log"
        exit_code, timed_out = run_pytest(command(request, suite, reports), suite, home, _budget(request, context), log)
        uploaded = s3io.upload_reports(s3, request, reports, REPORTS)
        summary = results.summarise(reports, REPORTS, exit_code)
        summary.update(
            run_id=request.run_id,
            timed_out=timed_out,
            duration_s=round(time.time() - started, 3),
            reports={name: f"s3://{request.reports_bucket}/{key}" for name, key in uploaded.items()},
            missing_reports=sorted(set(REPORTS) - set(uploaded)),
            output_tail=results.tail(log),
        )
        return summary
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
