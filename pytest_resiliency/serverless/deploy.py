"""Deploy the serverless runner from its CloudFormation template (``pytest-resiliency deploy``).

``template.yaml`` (shipped in the wheel) holds the runner Lambda, its S3 bucket for suites and
reports, a log group and a least-privilege IAM role. :func:`deploy` uploads the deployment
package (when given a local zip), creates the stack or updates it, waits for a terminal
state and returns the stack's outputs (function name, bucket, role), which
``pytest-resiliency invoke --stack NAME`` reads back.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = "template.yaml"
DEFAULT_CODE_PREFIX = "pytest-resiliency/"
STACK_TIMEOUT = 1800.0
POLL = 2.0
OK_STATES = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE"})
FAILED_STATES = frozenset(
    {
        "CREATE_FAILED",
        "ROLLBACK_COMPLETE",
        "ROLLBACK_FAILED",
        "UPDATE_ROLLBACK_COMPLETE",
        "UPDATE_ROLLBACK_FAILED",
        "DELETE_COMPLETE",
        "DELETE_FAILED",
    }
)


class DeployError(RuntimeError):
    """Bad input or a stack that did not reach a good state; the message says which and why."""


def template_text() -> str:
    return resources.files("pytest_resiliency.serverless").joinpath(TEMPLATE).read_text(encoding="utf-8")


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !Sub, !GetAtt...) as their long form."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def template() -> dict[str, Any]:
    """The template as data (intrinsics in their long form), for checks and tools."""
    data: dict[str, Any] = yaml.load(template_text(), Loader=_CfnLoader)
    return data


def parameter_names() -> list[str]:
    return list(template()["Parameters"])


@dataclass
class Code:
    """Where the deployment package is: a local zip to upload, or an S3 object already there."""

    bucket: str
    key: str
    path: Path | None = None

    @classmethod
    def parse(cls, code: str, bucket: str | None, key: str | None) -> Code:
        if code.startswith("s3://"):
            found_bucket, _, found_key = code[len("s3://") :].partition("/")
            if not found_bucket or not found_key:
                raise DeployError(f"--code {code!r}: an S3 location must be s3://BUCKET/KEY")
            return cls(found_bucket, found_key)
        path = Path(code)
        if not path.is_file():
            raise DeployError(f"--code {code!r}: no such file (a zip of the deployment package, or s3://BUCKET/KEY)")
        if not bucket:
            raise DeployError("--code-bucket is needed to upload a local --code zip (an existing bucket)")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        return cls(bucket, key or f"{DEFAULT_CODE_PREFIX}runner-{digest}.zip", path)


@dataclass
class Deployment:
    stack: str
    code: Code
    parameters: dict[str, str] = field(default_factory=dict)


def parse_parameters(pairs: list[str] | None) -> dict[str, str]:
    """``["FunctionName=runner", ...]`` checked against the template's parameters."""
    accepted = parameter_names()
    found: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise DeployError(f"--parameter {pair!r}: must be NAME=VALUE")
        if name in ("CodeS3Bucket", "CodeS3Key"):
            raise DeployError(f"--parameter {name}: set by --code (and --code-bucket / --code-key)")
        if name not in accepted:
            raise DeployError(f"--parameter {name!r}: unknown; accepted: {', '.join(accepted)}")
        found[name] = value
    return found


def _stack(cfn: Any, name: str) -> dict[str, Any] | None:
    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except cfn.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return dict(stacks[0]) if stacks else None


def outputs(cfn: Any, name: str) -> dict[str, str]:
    stack = _stack(cfn, name)
    if stack is None:
        raise DeployError(f"stack {name!r} does not exist (deploy it with pytest-resiliency deploy --stack {name})")
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def _wait(cfn: Any, name: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        stack = _stack(cfn, name)
        status = stack["StackStatus"] if stack else "DELETE_COMPLETE"
        if stack is not None and status in OK_STATES:
            return stack
        if status in FAILED_STATES:
            reasons = [
                f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}"
                for e in cfn.describe_stack_events(StackName=name)["StackEvents"]
                if str(e.get("ResourceStatus", "")).endswith("FAILED")
            ][:5]
            raise DeployError(f"stack {name} ended {status}" + (": " + "; ".join(reasons) if reasons else ""))
        if time.monotonic() > deadline:
            raise DeployError(f"stack {name} still {status} after {timeout:g}s")
        time.sleep(POLL)


def deploy(s3: Any, cfn: Any, request: Deployment, timeout: float = STACK_TIMEOUT) -> dict[str, str]:
    """Upload the package if local, create or update the stack, wait, and return its outputs."""
    code = request.code
    if code.path is not None:
        s3.upload_file(str(code.path), code.bucket, code.key)
    params = {**request.parameters, "CodeS3Bucket": code.bucket, "CodeS3Key": code.key}
    body = {
        "StackName": request.stack,
        "TemplateBody": template_text(),
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(params.items())],
        "Capabilities": ["CAPABILITY_IAM"],
        "Tags": [{"Key": "pytest-resiliency", "Value": "runner"}],
    }
    existing = _stack(cfn, request.stack)
    if existing is None:
        cfn.create_stack(**body)
    elif existing["StackStatus"] == "ROLLBACK_COMPLETE":
        raise DeployError(
            f"stack {request.stack} is ROLLBACK_COMPLETE (its creation failed) and cannot be updated; "
            f"delete it first: aws cloudformation delete-stack --stack-name {request.stack}"
        )
    else:
        try:
            cfn.update_stack(**body)
        except cfn.exceptions.ClientError as exc:
            if "No updates are to be performed" not in str(exc):
                raise
    _wait(cfn, request.stack, timeout)
    return outputs(cfn, request.stack)
