"""The ``pytest-resiliency`` command.

``pytest-resiliency invoke --function NAME --bucket B --suite DIR -m EXPR`` zips a suite
directory, uploads it to S3 and invokes the serverless runner
(:mod:`pytest_resiliency.serverless.handler`) on it, printing the run's summary as JSON.
The exit code is the remote pytest's (0 all passed, 1 failures...), 3 when the function
itself failed and 2 for bad usage.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

SKIP_DIRS = frozenset({"__pycache__", ".pytest_cache", ".git", ".mypy_cache", ".ruff_cache", ".venv", "node_modules"})
SKIP_SUFFIXES = (".pyc", ".pyo")
INVOKE_READ_TIMEOUT = 900  # a RequestResponse invocation lasts as long as the run (Lambda's maximum is 15 min)
FUNCTION_FAILED = 3


class CliError(RuntimeError):
    """Bad input; the message says what is accepted."""


def zip_suite(directory: Path) -> bytes:
    """The suite as a zip, reproducibly (sorted, fixed timestamps, no caches), so its hash names it."""
    if not directory.is_dir():
        raise CliError(f"--suite {directory}: not a directory")
    files = sorted(
        p
        for p in directory.rglob("*")
        if p.is_file()
        and not SKIP_DIRS.intersection(p.relative_to(directory).parts)
        and not p.name.endswith(SKIP_SUFFIXES)
    )
    if not files:
        raise CliError(f"--suite {directory}: no files to upload")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(directory).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (path.stat().st_mode & 0o777) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def _clients(args: argparse.Namespace) -> tuple[Any, Any]:
    import boto3  # type: ignore[import-untyped,unused-ignore]
    from botocore.config import Config  # type: ignore[import-untyped,unused-ignore]

    session = boto3.session.Session(region_name=args.region, profile_name=args.profile)
    s3 = session.client("s3", endpoint_url=args.endpoint_url)
    config = Config(read_timeout=INVOKE_READ_TIMEOUT, retries={"max_attempts": 0})  # never run a suite twice
    lam = session.client("lambda", endpoint_url=args.endpoint_url, config=config)
    return s3, lam


def invoke(args: argparse.Namespace) -> int:
    suite = Path(args.suite).resolve()
    body = zip_suite(suite)
    digest = hashlib.sha256(body).hexdigest()[:12]
    prefix = args.prefix if args.prefix.endswith("/") or not args.prefix else args.prefix + "/"
    key = f"{prefix}{suite.name}-{digest}.zip"
    s3, lam = _clients(args)
    s3.put_object(Bucket=args.bucket, Key=key, Body=body, ContentType="application/zip")
    print(f"uploaded {len(body)} bytes to s3://{args.bucket}/{key}", file=sys.stderr)
    event: dict[str, Any] = {"bucket": args.bucket, "suite": {"zip": key}}
    if args.markers:
        event["markers"] = args.markers
    if args.pytest_args:
        event["args"] = list(args.pytest_args)
    for name in ("reports_prefix", "run_id"):
        if getattr(args, name):
            event[name] = getattr(args, name)
    kind = "Event" if args.asynchronous else "RequestResponse"
    response = lam.invoke(FunctionName=args.function, InvocationType=kind, Payload=json.dumps(event).encode())
    if args.asynchronous:
        print(json.dumps({"invoked": args.function, "status_code": response.get("StatusCode"), "event": event}))
        return 0
    raw = response["Payload"].read().decode("utf-8", errors="replace")
    if response.get("FunctionError"):
        print(f"function {args.function} failed ({response['FunctionError']}): {raw}", file=sys.stderr)
        return FUNCTION_FAILED
    try:
        summary = json.loads(raw)
    except json.JSONDecodeError:
        print(raw)
        print("the function did not return a JSON summary (is it the pytest-resiliency handler?)", file=sys.stderr)
        return 0
    print(json.dumps(summary, indent=2))
    code = summary.get("exit_code") if isinstance(summary, dict) else None
    return code if isinstance(code, int) and 0 <= code < 256 else 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="pytest-resiliency", description="pytest-resiliency tools")
    commands = top.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser(
        "invoke",
        help="zip a suite, upload it to S3 and run it with the serverless runner (a Lambda function)",
        description="Zip SUITE, upload it to s3://BUCKET/PREFIX and invoke FUNCTION "
        "(pytest_resiliency.serverless.handler.handler) on it; print the summary. "
        "Arguments after -- go to the remote pytest.",
    )
    run.add_argument("--function", required=True, help="the Lambda function's name or ARN")
    run.add_argument("--bucket", required=True, help="S3 bucket for the suite and the reports")
    run.add_argument("--suite", required=True, help="directory of the suite (tests, conftest, experiment files)")
    run.add_argument("-m", dest="markers", default=None, metavar="EXPR", help="pytest -m expression to select tests")
    run.add_argument("--prefix", default="suites/", help="S3 key prefix of the uploaded zip (default suites/)")
    run.add_argument("--reports-prefix", default=None, help="S3 key prefix of the reports (default reports/RUN_ID/)")
    run.add_argument("--run-id", default=None, help="name of this run (default: time and a random suffix)")
    run.add_argument("--region", default=None, help="AWS region (default: the environment's)")
    run.add_argument("--profile", default=None, help="AWS profile")
    run.add_argument("--endpoint-url", default=None, help="AWS endpoint (moto, LocalStack)")
    run.add_argument("--async", dest="asynchronous", action="store_true", help="invoke without waiting (Event)")
    run.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command is None:
        parser().print_help(sys.stderr)
        return 2
    try:
        return invoke(args)
    except CliError as exc:
        print(f"pytest-resiliency {args.command}: {exc}", file=sys.stderr)
        return 2
