"""Deploying the serverless runner from its CloudFormation template, on the embedded moto server.

``pytest-resiliency deploy`` creates the stack on moto (its CloudFormation builds the bucket,
the log group, the role and the function), then ``pytest-resiliency invoke --stack`` runs a
suite through it. moto cannot execute a Lambda function here (no Docker), so the one mock is
Lambda's execution environment: a hook on the CLI's Lambda client answers ``Invoke`` by doing
what Lambda does with the deployed function — load the code package the function was created
from (its CodeSha256 checked), assume the function's role, and call its configured handler in a
fresh interpreter within its timeout. Everything else (S3, CloudFormation, IAM, STS) is moto.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.parse
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from test_serverless import SUITE

import pytest_resiliency
from pytest_resiliency import cli
from pytest_resiliency.cli import main
from pytest_resiliency.serverless import deploy as stack

if TYPE_CHECKING:
    from pytest_resiliency.aws.moto_server import MotoServer

REGION = "us-east-1"


def package(into: Path) -> Path:
    """A deployment package: the pytest_resiliency package as it is here (dependencies: this environment's)."""
    root = Path(pytest_resiliency.__file__).resolve().parent
    path = into / "runner.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(root.rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts:
                archive.write(file, Path("pytest_resiliency") / file.relative_to(root))
    return path


@pytest.fixture
def aws(resiliency_moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    import boto3  # type: ignore[import-untyped,unused-ignore]

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    url = resiliency_moto_server.url
    clients = {name: boto3.client(name, endpoint_url=url, region_name=REGION) for name in ("s3", "cloudformation")}
    clients["s3"].create_bucket(Bucket="code")
    return {"url": url, **clients, "zip": package(tmp_path), "boto3": boto3}


def document(policy: Any) -> dict[str, Any]:
    """A policy document as boto3 returns it: a dict (AWS); moto 5 keeps CloudFormation's inline
    policies as the Python repr of the dict, so that is read too."""
    if isinstance(policy, dict):
        return policy
    text = urllib.parse.unquote(policy)
    try:
        return dict(json.loads(text))
    except ValueError:
        return dict(ast.literal_eval(text))


def deploy_argv(aws: dict[str, Any], *extra: str) -> list[str]:
    return [
        "deploy",
        "--stack",
        "resiliency",
        "--code",
        str(aws["zip"]),
        "--code-bucket",
        "code",
        "--endpoint-url",
        aws["url"],
        "--region",
        REGION,
        *extra,
    ]


def test_deploy_creates_the_runner_stack(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(deploy_argv(aws, "--parameter", "FunctionName=chaos-runner")) == 0
    outputs = json.loads(capsys.readouterr().out)
    assert outputs["FunctionName"] == "chaos-runner"
    boto3, url = aws["boto3"], aws["url"]
    lam = boto3.client("lambda", endpoint_url=url, region_name=REGION)
    iam = boto3.client("iam", endpoint_url=url, region_name=REGION)
    s3 = aws["s3"]

    resources = aws["cloudformation"].describe_stack_resources(StackName="resiliency")["StackResources"]
    assert {r["LogicalResourceId"]: r["ResourceStatus"] for r in resources} == {
        "ReportsBucket": "CREATE_COMPLETE",
        "RunnerLogGroup": "CREATE_COMPLETE",
        "RunnerRole": "CREATE_COMPLETE",
        "RunnerFunction": "CREATE_COMPLETE",
    }
    function = lam.get_function(FunctionName="chaos-runner")["Configuration"]
    assert function["Handler"] == "pytest_resiliency.serverless.handler.handler"
    assert (function["Runtime"], function["Timeout"], function["MemorySize"]) == ("python3.13", 900, 2048)
    assert function["Role"] == outputs["RoleArn"]
    assert function["CodeSha256"] == base64.b64encode(hashlib.sha256(aws["zip"].read_bytes()).digest()).decode()

    role = outputs["RoleArn"].rsplit("/", 1)[1]
    trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert sorted(iam.list_role_policies(RoleName=role)["PolicyNames"]) == [
        "resiliency-faults",
        "resiliency-read",
        "runner",
    ]
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []  # no managed wildcards
    faults = document(iam.get_role_policy(RoleName=role, PolicyName="resiliency-faults")["PolicyDocument"])
    terminate = next(s for s in faults["Statement"] if "ec2:TerminateInstances" in s["Action"])
    assert terminate["Resource"] == f"arn:aws:ec2:{REGION}:123456789012:instance/*"
    assert terminate["Condition"] == {"StringEquals": {"ec2:ResourceTag/resiliency-target": "true"}}
    runner = document(iam.get_role_policy(RoleName=role, PolicyName="runner")["PolicyDocument"])
    bucket = outputs["BucketName"]
    assert {s["Sid"]: s["Resource"] for s in runner["Statement"]}["WriteReports"] == f"arn:aws:s3:::{bucket}/reports/*"

    encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert encryption["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    # moto's CloudFormation does not apply a bucket's public access block: checked in the template
    bucket_props = stack.template()["Resources"]["ReportsBucket"]["Properties"]
    assert all(bucket_props["PublicAccessBlockConfiguration"].values())

    # deploying again with nothing changed is a no-op update, not an error
    assert main(deploy_argv(aws, "--parameter", "FunctionName=chaos-runner")) == 0
    assert json.loads(capsys.readouterr().out) == {
        "stack": "resiliency",
        **{k: v for k, v in outputs.items() if k != "stack"},
    }


def lambda_runtime(aws: dict[str, Any], workdir: Path) -> Any:
    """Stands in for Lambda's execution environment (moto has none without Docker); see the module doc."""
    from botocore.awsrequest import AWSResponse  # type: ignore[import-untyped,unused-ignore]
    from botocore.response import StreamingBody  # type: ignore[import-untyped,unused-ignore]

    boto3, url = aws["boto3"], aws["url"]
    lam = boto3.client("lambda", endpoint_url=url, region_name=REGION)
    cfn, s3 = aws["cloudformation"], aws["s3"]
    sts = boto3.client("sts", endpoint_url=url, region_name=REGION)
    invocations: list[dict[str, Any]] = []

    def invoke(params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        name = re.search(r"/functions/([^/]+)/invocations", params["url_path"]).group(1)  # type: ignore[union-attr]
        config = lam.get_function(FunctionName=name)["Configuration"]
        stack_params = {
            p["ParameterKey"]: p["ParameterValue"]
            for p in cfn.describe_stacks(StackName="resiliency")["Stacks"][0]["Parameters"]
        }
        code = s3.get_object(Bucket=stack_params["CodeS3Bucket"], Key=stack_params["CodeS3Key"])["Body"].read()
        assert base64.b64encode(hashlib.sha256(code).digest()).decode() == config["CodeSha256"]
        task = workdir / f"task-{len(invocations)}"
        zipfile.ZipFile(io.BytesIO(code)).extractall(task)
        creds = sts.assume_role(RoleArn=config["Role"], RoleSessionName="lambda-runtime")["Credentials"]
        env = {
            **os.environ,
            **(config.get("Environment") or {}).get("Variables", {}),
            "PYTHONPATH": str(task),  # /var/task: the package comes first, as in Lambda
            "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
            "AWS_SESSION_TOKEN": creds["SessionToken"],
            "AWS_ENDPOINT_URL": url,
            "AWS_DEFAULT_REGION": REGION,
        }
        module, function = config["Handler"].rsplit(".", 1)
        code_line = (
            f"import json, sys, importlib, pytest_resiliency\n"
            f"assert pytest_resiliency.__file__.startswith({str(task)!r}), pytest_resiliency.__file__\n"
            f"handler = getattr(importlib.import_module({module!r}), {function!r})\n"
            "print(json.dumps(handler(json.loads(sys.argv[1]), None)))\n"
        )
        event = params["body"].decode() if isinstance(params["body"], bytes) else params["body"]
        done = subprocess.run(
            [sys.executable, "-c", code_line, event],
            env=env,
            cwd=task,
            capture_output=True,
            text=True,
            timeout=config["Timeout"],
        )
        invocations.append({"function": name, "event": json.loads(event), "stderr": done.stderr})
        ok = done.returncode == 0
        body = (
            (done.stdout.strip().splitlines() or [""])[-1] if ok else json.dumps({"errorMessage": done.stderr[-500:]})
        )
        data = body.encode()
        parsed = {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(data), len(data)), "ResponseMetadata": {}}
        if not ok:
            parsed["FunctionError"] = "Unhandled"
        return AWSResponse(url, 200, {}, None), parsed

    return invoke, invocations


@pytest.mark.slow
def test_invoke_through_the_deployed_stack_runs_the_suite(
    aws: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(deploy_argv(aws)) == 0
    outputs = json.loads(capsys.readouterr().out)
    suite = tmp_path / "orders-suite"
    (suite / "tests").mkdir(parents=True)
    (suite / "tests" / "test_demo.py").write_text(SUITE)
    runtime, invocations = lambda_runtime(aws, tmp_path)
    real_clients = cli._clients

    def clients(args: Any) -> tuple[Any, Any]:
        s3, lam = real_clients(args)
        lam.meta.events.register("before-call.lambda.Invoke", runtime)
        return s3, lam

    monkeypatch.setattr(cli, "_clients", clients)
    argv = ["invoke", "--stack", "resiliency", "--suite", str(suite), "-m", "resiliency", "--run-id", "r1"]
    argv += ["--endpoint-url", aws["url"], "--region", REGION, "--", "-p", "no:locust", "-p", "no:randomly"]
    assert main(argv) == 1  # the remote pytest's exit code: one test breached its budget
    out = capsys.readouterr()
    assert len(invocations) == 1, out.err
    assert invocations[0]["function"] == outputs["FunctionName"]
    summary = json.loads(out.out)
    assert summary["counts"] == {"tests": 2, "passed": 1, "failed": 1, "errors": 0, "skipped": 0}, summary
    assert summary["outcomes"] == {"breach": 1, "pass": 1}
    bucket = outputs["BucketName"]
    assert invocations[0]["event"]["bucket"] == bucket
    listed = sorted(o["Key"] for o in aws["s3"].list_objects_v2(Bucket=bucket, Prefix="reports/r1/")["Contents"])
    assert listed == ["reports/r1/journal.json", "reports/r1/junit.xml", "reports/r1/report.html"]


IAM_PREFIX = {"elbv2": "elasticloadbalancing"}
# Runner code that makes AWS calls on behalf of the suite (the CLI and deploy run on the user's side).
SCANNED = ("faults/aws", "aws/probes.py", "aws/stop.py", "targets/aws.py")
NO_PERMISSION = {"sts:GetCallerIdentity"}  # always allowed by IAM


def called_actions() -> set[str]:
    """Every AWS API the runner code calls, found in its source, as IAM actions."""
    import botocore.session  # type: ignore[import-untyped,unused-ignore]
    from botocore import xform_name  # type: ignore[import-untyped,unused-ignore]

    session = botocore.session.get_session()
    root = Path(pytest_resiliency.__file__).resolve().parent
    files = [p for s in SCANNED for p in ([root / s] if s.endswith(".py") else sorted((root / s).glob("*.py")))]
    pairs: set[tuple[str, str]] = set()
    for path in files:
        text = path.read_text()
        pairs |= set(re.findall(r'mutate\(\s*"([a-z0-9]+)",\s*"([a-z_0-9]+)"', text))
        pairs |= set(re.findall(r'\.client\("([a-z0-9]+)"\)\.([a-z_0-9]+)\(', text))
        pairs |= set(re.findall(r'_pages\(\s*session\.client\("([a-z0-9]+)"\),\s*"([a-z_0-9]+)"', text))
        for var, service in re.findall(r'(\w+) = (?:self\.)?session\.client\("([a-z0-9]+)"\)', text):
            pairs |= {(service, op) for op in re.findall(rf"\b{var}\.([a-z_0-9]+)\(", text)}
            pairs |= {(service, op) for op in re.findall(rf'\b{var}\.get_paginator\("([a-z_0-9]+)"\)', text)}
            pairs |= {(service, op) for op in re.findall(rf'_pages\(\s*{var},\s*"([a-z_0-9]+)"', text)}
    actions = set()
    for service, op in pairs:
        names = {xform_name(n): n for n in session.get_service_model(service).operation_names}
        if op in names:
            actions.add(f"{IAM_PREFIX.get(service, service)}:{names[op]}")
    return actions - NO_PERMISSION


def granted_actions(policies: tuple[str, ...]) -> set[str]:
    resource = stack.template()["Resources"]["RunnerRole"]["Properties"]["Policies"]
    found = set()
    for policy in resource:
        if policy["PolicyName"] in policies:
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement["Action"]
                found |= {actions} if isinstance(actions, str) else set(actions)
    return found


def test_the_role_grants_exactly_what_the_runner_calls() -> None:
    called = called_actions()
    assert len(called) > 25  # the scan found the calls (a broken scan would find none)
    granted = granted_actions(("resiliency-read", "resiliency-faults"))
    # helpers IAM needs beside the API calls themselves: tagging what is created, passing FIS its role
    implied = {"ec2:CreateTags", "fis:TagResource", "iam:PassRole"}
    assert called - granted == set(), f"called but not granted: {sorted(called - granted)}"
    assert granted - called - implied == set(), f"granted but never called: {sorted(granted - called - implied)}"
    runner = granted_actions(("runner",))
    assert runner == {"logs:CreateLogStream", "logs:PutLogEvents", "s3:ListBucket", "s3:GetObject", "s3:PutObject"}


def test_every_mutating_statement_is_scoped() -> None:
    """No mutating action on "*" without a condition, except those IAM cannot scope (named here)."""
    unscopable = {"ssm:CancelCommand", "ec2:ReplaceNetworkAclAssociation", "fis:StopExperiment", "fis:StartExperiment"}
    policies = stack.template()["Resources"]["RunnerRole"]["Properties"]["Policies"]
    faults = next(p for p in policies if p["PolicyName"] == "resiliency-faults")["PolicyDocument"]["Statement"]
    for statement in faults:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        if "Condition" not in statement:
            assert set(actions) <= unscopable | {
                "fis:CreateExperimentTemplate",
                "ssm:CreateDocument",
                "ssm:DescribeDocument",
                "ssm:SendCommand",
            }, statement
        if statement["Resource"] == "*":
            assert "Condition" in statement or set(actions) <= unscopable, statement


def test_template_is_valid_cloudformation() -> None:
    """cfn-lint checks the template against CloudFormation's resource specification (offline)."""
    linter = shutil.which("cfn-lint")
    if linter is None:
        pytest.skip("cfn-lint is not installed (pip install cfn-lint)")
    done = subprocess.run(
        [linter, "--", str(Path(stack.__file__).with_name("template.yaml"))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_bad_deploy_and_invoke_input(aws: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        (["--code", str(tmp_path / "missing.zip")], "missing.zip': no such file"),
        (["--code", "s3://only-bucket"], "an S3 location must be s3://BUCKET/KEY"),
        (["--parameter", "Memory=1"], "--parameter 'Memory': unknown; accepted: CodeS3Bucket, CodeS3Key, FunctionName"),
        (["--parameter", "CodeS3Key=x"], "--parameter CodeS3Key: set by --code"),
        (["--parameter", "FunctionName"], "--parameter 'FunctionName': must be NAME=VALUE"),
    ]
    for extra, message in cases:
        argv = deploy_argv(aws)
        if extra[0] == "--code":
            argv[argv.index("--code") + 1] = extra[1]
        else:
            argv += extra
        assert main(argv) == 2, extra
        assert message in capsys.readouterr().err, extra
    argv = deploy_argv(aws)
    del argv[argv.index("--code-bucket") : argv.index("--code-bucket") + 2]
    assert main(argv) == 2
    assert "--code-bucket is needed" in capsys.readouterr().err
    assert main(["invoke", "--suite", str(tmp_path)]) == 2
    assert "--function and --bucket needed (or --stack NAME" in capsys.readouterr().err
    argv = ["invoke", "--stack", "nope", "--suite", str(tmp_path), "--endpoint-url", aws["url"], "--region", REGION]
    assert main(argv) == 2
    assert "stack 'nope' does not exist" in capsys.readouterr().err


def test_template_command_prints_the_template(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["template"]) == 0
    text = capsys.readouterr().out
    assert text == stack.template_text() and "AWS::Lambda::Function" in text
