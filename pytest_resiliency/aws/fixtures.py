"""The ``aws`` fixture and the AWS options.

Imported at pytest start-up through ``plugin.pytest_plugins``: nothing heavy here.
boto3 and moto are imported inside the fixtures, only by tests that ask for AWS.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .moto_server import MotoServer
    from .session import AwsSession

PLAN_PROPERTY = "resiliency_aws_plan"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("resiliency")
    group.addoption(
        "--resiliency-aws",
        choices=("moto", "real"),
        default=None,
        help="where the `aws` fixture points: the embedded moto server (default) or real AWS, "
        "which needs the account and region in ini resiliency_allowed_accounts/resiliency_allowed_regions",
    )
    group.addoption(
        "--resiliency-aws-region",
        metavar="REGION",
        default=None,
        help="AWS region of the `aws` fixture (moto default us-east-1; real: AWS_REGION/profile)",
    )
    group.addoption(
        "--resiliency-aws-profile", metavar="NAME", default=None, help="boto3 profile for --resiliency-aws=real"
    )
    group.addoption(
        "--resiliency-dry-run",
        action="store_true",
        default=False,
        help="resolve AWS targets and print the planned mutating calls without making any",
    )
    parser.addini("resiliency_aws", "default of --resiliency-aws (moto or real)", default=None)
    parser.addini("resiliency_allowed_accounts", "AWS account ids real-mode faults may act on", type="args", default=[])
    parser.addini("resiliency_allowed_regions", "AWS regions real-mode faults may act on", type="args", default=[])


def _mode(config: pytest.Config) -> str:
    mode = config.getoption("resiliency_aws") or config.getini("resiliency_aws") or "moto"
    if mode not in ("moto", "real"):
        raise pytest.UsageError(f"ini resiliency_aws={mode!r} is not one of moto, real")
    return str(mode)


@pytest.fixture(scope="session")
def resiliency_moto_server() -> Iterator[MotoServer]:
    """One embedded moto server per pytest process (per xdist worker), on a free loopback port."""
    from .moto_server import MotoServer

    server = MotoServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aws(request: pytest.FixtureRequest) -> Iterator[AwsSession]:
    """boto3 clients for this test: ``aws.client("ec2")``; faults and probes use it on their own.

    moto by default (state reset before the test, dummy credentials in these clients
    only); real AWS with ``--resiliency-aws=real`` when the account and region are
    allow-listed, refused before any mutating call otherwise.
    """
    from ..context import bind_aws_session
    from .session import AwsError, AwsSession

    config = request.config
    mode = _mode(config)
    endpoint = None
    if mode == "moto":
        server: MotoServer = request.getfixturevalue("resiliency_moto_server")
        server.reset()
        endpoint = server.url
    try:
        session = AwsSession(
            mode,
            region=config.getoption("resiliency_aws_region"),
            endpoint_url=endpoint,
            dry_run=bool(config.getoption("resiliency_dry_run")),
            allowed_accounts=config.getini("resiliency_allowed_accounts"),
            allowed_regions=config.getini("resiliency_allowed_regions"),
            profile=config.getoption("resiliency_aws_profile"),
        )
        session.verify()
    except AwsError as exc:
        pytest.fail(str(exc), pytrace=False)
    bind_aws_session(session)
    try:
        yield session
    finally:
        bind_aws_session(None)
        if session.plan:
            request.node.user_properties.append((PLAN_PROPERTY, json.dumps(session.plan_lines())))


class _DryRunPlans:
    """Collects the planned calls from the reports (they ride on them under xdist) and prints them."""

    def __init__(self) -> None:
        self.plans: list[tuple[str, list[str]]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown":
            self.plans.extend(
                (report.nodeid, json.loads(str(v))) for k, v in report.user_properties if k == PLAN_PROPERTY
            )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.section("resiliency dry-run: planned AWS calls (none made)")
        if not self.plans:
            terminalreporter.write_line("no mutating AWS call planned")
        for nodeid, lines in self.plans:
            terminalreporter.write_line(nodeid)
            for line in lines:
                terminalreporter.write_line(f"    {line}")


def pytest_configure(config: pytest.Config) -> None:
    _mode(config)  # a bad ini value is a usage error before anything runs
    if config.getoption("resiliency_dry_run") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(_DryRunPlans(), "resiliency-aws-dry-run")
