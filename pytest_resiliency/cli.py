"""The ``pytest-resiliency`` command.

``pytest-resiliency compare BASELINE.json CURRENT.json`` is the regression gate (exit 1 on a
regression), ``pytest-resiliency trend J1.json J2.json ... -o trend.html`` writes the trend
page, ``pytest-resiliency deploy --stack NAME --code runner.zip --code-bucket B`` deploys the
serverless runner from its CloudFormation template.

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

from .errors import ConfigError, ResiliencyError

SKIP_DIRS = frozenset({"__pycache__", ".pytest_cache", ".git", ".mypy_cache", ".ruff_cache", ".venv", "node_modules"})
SKIP_SUFFIXES = (".pyc", ".pyo")
INVOKE_READ_TIMEOUT = 900  # a RequestResponse invocation lasts as long as the run (Lambda's maximum is 15 min)
FUNCTION_FAILED = 3


class CliError(ConfigError, RuntimeError):
    """Bad input; the message says what is accepted (a RuntimeError too, as before)."""


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


def _from_stack(args: argparse.Namespace) -> None:
    """``--stack NAME`` fills ``--function`` and ``--bucket`` from the deployed stack's outputs."""
    if args.stack:
        import boto3  # type: ignore[import-untyped,unused-ignore]

        from .serverless.deploy import outputs

        session = boto3.session.Session(region_name=args.region, profile_name=args.profile)
        found = outputs(session.client("cloudformation", endpoint_url=args.endpoint_url), args.stack)
        args.function = args.function or found.get("FunctionName")
        args.bucket = args.bucket or found.get("BucketName")
    missing = [flag for flag, value in (("--function", args.function), ("--bucket", args.bucket)) if not value]
    if missing:
        raise CliError(
            f"{' and '.join(missing)} needed (or --stack NAME of a stack deployed by pytest-resiliency deploy)"
        )


def invoke(args: argparse.Namespace) -> int:
    _from_stack(args)
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


def compare(args: argparse.Namespace) -> int:
    from .report import compare as gate

    thresholds = gate.parse_thresholds(args.max_regression)
    baseline, current = gate.load(args.baseline), gate.load(args.current)
    result = gate.compare(baseline, current, thresholds, args.baseline, args.current)
    if args.format == "markdown":
        print(gate.markdown(result))
    elif args.format == "json":
        print(json.dumps(gate.as_json(result), indent=2))
    else:
        print("\n".join(gate.text_lines(result)))
    if args.markdown:
        gate.append_markdown(Path(args.markdown), result)
    return result.exit_code


def trend(args: argparse.Namespace) -> int:
    from .report import trend as page

    count = page.write([Path(p) for p in args.journals], Path(args.output), args.title, args.sort == "created")
    print(f"trend of {count} test(s) across {len(args.journals)} run(s) written to {args.output}", file=sys.stderr)
    return 0


def deploy(args: argparse.Namespace) -> int:
    from .serverless import deploy as stack

    request = stack.Deployment(
        args.stack,
        stack.Code.parse(args.code, args.code_bucket, args.code_key),
        stack.parse_parameters(args.parameter),
    )
    import boto3  # type: ignore[import-untyped,unused-ignore]

    session = boto3.session.Session(region_name=args.region, profile_name=args.profile)
    s3 = session.client("s3", endpoint_url=args.endpoint_url)
    cfn = session.client("cloudformation", endpoint_url=args.endpoint_url)
    from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped,unused-ignore]

    print(f"deploying stack {args.stack} (code s3://{request.code.bucket}/{request.code.key})", file=sys.stderr)
    try:
        found = stack.deploy(s3, cfn, request, timeout=args.timeout)
    except (stack.DeployError, BotoCoreError, ClientError) as exc:
        print(f"pytest-resiliency deploy: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"stack": args.stack, **found}, indent=2))
    return 0


def show_template(args: argparse.Namespace) -> int:
    from .serverless.deploy import template_text

    print(template_text(), end="")
    return 0


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
    run.add_argument("--function", default=None, help="the Lambda function's name or ARN")
    run.add_argument("--bucket", default=None, help="S3 bucket for the suite and the reports")
    run.add_argument("--stack", default=None, help="take --function and --bucket from this deployed stack")
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

    cmp = commands.add_parser(
        "compare",
        help="regression gate: compare two JSON journals, exit 1 when a figure got worse",
        description="Match tests by node id and compare RTO, RPO, lost writes, p99 and error rate. Exit 1 when "
        "a figure got worse beyond the threshold AND beyond its stated uncertainty (the measured intervals do not "
        "overlap), 0 otherwise, 2 on bad input. New, vanished and unmeasured tests are listed, not errors.",
    )
    cmp.add_argument("baseline", metavar="BASELINE.json", help="journal of the reference run (--resiliency-json)")
    cmp.add_argument("current", metavar="CURRENT.json", help="journal of the run to judge")
    cmp.add_argument(
        "--max-regression",
        action="append",
        metavar="SPEC",
        help="20%% (default; every figure) or FIGURE:VALUE with FIGURE one of rto, rpo, lost_writes, p99, "
        "error_rate and VALUE a percentage, off, or an absolute amount (p99:50ms, lost_writes:0, "
        "error_rate:0.01); repeatable",
    )
    cmp.add_argument("--format", choices=("text", "markdown", "json"), default="text", help="what to print")
    cmp.add_argument(
        "--markdown", metavar="PATH", default=None, help="also append the Markdown table to PATH ($GITHUB_STEP_SUMMARY)"
    )

    tr = commands.add_parser(
        "trend",
        help="write one self-contained HTML page of RTO, lost writes and p99 across runs",
        description="Read JSON journals (oldest first) and write a self-contained HTML page: per test, RTO "
        "(with its uncertainty), lost writes and p99 across the runs, budgets drawn.",
    )
    tr.add_argument("journals", nargs="+", metavar="JOURNAL.json", help="journals, oldest first")
    tr.add_argument("-o", "--output", default="trend.html", help="the page to write (default trend.html)")
    tr.add_argument("--title", default="Resiliency trends", help="the page title")
    tr.add_argument(
        "--sort", choices=("given", "created"), default="given", help="order of the runs (default: as given)"
    )

    dep = commands.add_parser(
        "deploy",
        help="deploy the serverless runner (Lambda, S3 bucket, least-privilege IAM role) with CloudFormation",
        description="Upload the deployment package (a local zip, to --code-bucket) and create or update the "
        "CloudFormation stack of the runner; wait for it and print its outputs. Exit 1 when the stack failed.",
    )
    dep.add_argument("--stack", required=True, help="the CloudFormation stack name")
    dep.add_argument(
        "--code", required=True, help="the deployment package: a local zip to upload, or s3://BUCKET/KEY already there"
    )
    dep.add_argument("--code-bucket", default=None, help="existing bucket to upload a local --code zip to")
    dep.add_argument(
        "--code-key", default=None, help="key of the uploaded zip (default pytest-resiliency/runner-<sha>.zip)"
    )
    dep.add_argument(
        "--parameter",
        action="append",
        metavar="NAME=VALUE",
        help="a template parameter (FunctionName, TargetTagValue, MemorySize, EphemeralStorageSize, "
        "ReportsRetentionDays, LogRetentionDays); repeatable",
    )
    dep.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the stack (default 1800)")
    dep.add_argument("--region", default=None, help="AWS region (default: the environment's)")
    dep.add_argument("--profile", default=None, help="AWS profile")
    dep.add_argument("--endpoint-url", default=None, help="AWS endpoint (moto, LocalStack)")

    commands.add_parser(
        "template",
        help="print the runner's CloudFormation template",
        description="Print the CloudFormation template `deploy` uses (for review, or your own pipeline).",
    )
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command is None:
        parser().print_help(sys.stderr)
        return 2
    commands = {"invoke": invoke, "compare": compare, "trend": trend, "deploy": deploy, "template": show_template}
    try:
        return commands[args.command](args)
    except Exception as exc:
        if not isinstance(exc, _usage_errors()):
            raise
        print(f"pytest-resiliency {args.command}: {exc}", file=sys.stderr)
        return 2


def _usage_errors() -> tuple[type[Exception], ...]:
    """What a command reports as bad usage (exit 2), each caught once here, never re-wrapped:
    ours, and the kinds of the report comparison and the serverless deployment."""
    from .report.compare import CompareError
    from .serverless.deploy import DeployError

    return (ResiliencyError, CompareError, DeployError)
