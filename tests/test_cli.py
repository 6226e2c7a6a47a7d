"""``pytest-resiliency invoke``: zip, upload and invoke, against the embedded moto server.

moto's Lambda does not execute the function here (no Docker): its "simple" backend echoes
the event back, which shows exactly what the command sent; a queued result stands in for
the handler's summary to check the exit code.
"""

from __future__ import annotations

import io
import json
import subprocess
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_resiliency.cli import main, zip_suite

if TYPE_CHECKING:
    from pytest_resiliency.aws.moto_server import MotoServer


def _moto_api(url: str, path: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(f"{url}{path}", data=json.dumps(body).encode(), method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        response.read()


@pytest.fixture
def lambda_env(resiliency_moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A bucket and a function in moto's simple Lambda backend (restored to the default afterwards)."""
    import boto3  # type: ignore[import-untyped,unused-ignore]

    url = resiliency_moto_server.url
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    _moto_api(url, "/moto-api/config", {"lambda": {"use_docker": False}})
    kw: dict[str, Any] = {"endpoint_url": url, "region_name": "us-east-1"}
    s3, iam, lam = boto3.client("s3", **kw), boto3.client("iam", **kw), boto3.client("lambda", **kw)
    bucket, function = f"b-{uuid.uuid4().hex[:10]}", f"runner-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    role = iam.create_role(RoleName=function, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("placeholder.py", "")
    lam.create_function(
        FunctionName=function,
        Runtime="python3.11",
        Role=role,
        Handler="pytest_resiliency.serverless.handler.handler",
        Code={"ZipFile": code.getvalue()},
    )
    try:
        yield {"url": url, "s3": s3, "bucket": bucket, "function": function}
    finally:
        _moto_api(url, "/moto-api/config", {"lambda": {"use_docker": True}})


def suite(tmp_path: Path) -> Path:
    root = tmp_path / "orders-suite"
    (root / "__pycache__").mkdir(parents=True)
    (root / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"junk")
    (root / "test_orders.py").write_text("def test_ok():\n    pass\n")
    (root / "orders.experiment.json").write_text("{}")
    return root


def test_invoke_uploads_the_suite_and_sends_the_event(
    lambda_env: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = suite(tmp_path)
    argv = ["invoke", "--function", lambda_env["function"], "--bucket", lambda_env["bucket"], "--suite", str(root)]
    argv += ["-m", "aws and not slow", "--endpoint-url", lambda_env["url"], "--region", "us-east-1"]
    argv += ["--run-id", "r1", "--", "-x", "--maxfail=2"]
    assert main(argv) == 0
    out = capsys.readouterr()
    echoed = json.loads(out.out)  # moto's simple backend returns the event it was given
    key = echoed["suite"]["zip"]
    assert key.startswith("suites/orders-suite-") and key.endswith(".zip")
    assert echoed == {
        "bucket": lambda_env["bucket"],
        "suite": {"zip": key},
        "markers": "aws and not slow",
        "args": ["-x", "--maxfail=2"],
        "run_id": "r1",
    }
    body = lambda_env["s3"].get_object(Bucket=lambda_env["bucket"], Key=key)["Body"].read()
    assert sorted(zipfile.ZipFile(io.BytesIO(body)).namelist()) == ["orders.experiment.json", "test_orders.py"]
    assert f"to s3://{lambda_env['bucket']}/{key}" in out.err

    _moto_api(lambda_env["url"], "/moto-api/static/lambda-simple/response", {"results": [json.dumps({"exit_code": 1})]})
    assert main([*argv[: argv.index("--run-id")]]) == 1  # the remote pytest's exit code


def test_zip_is_reproducible_and_skips_caches(tmp_path: Path) -> None:
    root = suite(tmp_path)
    first = zip_suite(root)
    (root / "test_orders.py").touch()  # a newer mtime does not change the archive
    assert zip_suite(root) == first
    assert "__pycache__/x.cpython-311.pyc" not in zipfile.ZipFile(io.BytesIO(first)).namelist()


def test_bad_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "invoke" in capsys.readouterr().err
    argv = ["invoke", "--function", "f", "--bucket", "b", "--suite", str(tmp_path / "missing")]
    assert main(argv) == 2
    assert f"--suite {tmp_path / 'missing'}: not a directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["invoke", "--bucket", "b"])
    assert exc.value.code == 2


def test_console_script_is_installed() -> None:
    done = subprocess.run(["pytest-resiliency", "invoke", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "--function" in done.stdout and "--suite" in done.stdout
