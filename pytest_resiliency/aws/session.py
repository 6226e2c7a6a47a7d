"""AWS sessions: boto3 clients bound to the embedded moto server or, when allow-listed, to real AWS.

Every mutating call a fault makes goes through :meth:`AwsSession.mutate`, the one
gate where the allow-list is enforced (real mode) and where ``--resiliency-dry-run``
turns the call into a line of the plan instead. Read-only calls use the clients directly.
boto3 is imported here, so this module is imported only when a test asks for AWS.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

import boto3  # type: ignore[import-untyped,unused-ignore]
from botocore.config import Config  # type: ignore[import-untyped,unused-ignore]

from .. import context as _context
from ..errors import ConfigError

MOTO, REAL = "moto", "real"
MODES = (MOTO, REAL)
DEFAULT_REGION = "us-east-1"
# moto's credentials: only ever given to the clients this module creates, never put in os.environ.
_DUMMY_CREDENTIALS = {
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
    "aws_session_token": "testing",
}


class AwsError(ConfigError, RuntimeError):
    """An AWS session could not be created or used; the message says why and what is accepted.

    A :class:`~pytest_resiliency.errors.ConfigError` (bad mode, region, allow-list); still a
    ``RuntimeError`` for code that caught it as one.
    """


class AwsRefused(AwsError):
    """Real AWS was refused: the account or region is not allow-listed."""


def current_session() -> AwsSession | None:
    """The session of the running test (:func:`pytest_resiliency.context.aws_session`)."""
    return _context.aws_session()


def set_current(session: AwsSession | None) -> None:
    """Deprecated: use :func:`pytest_resiliency.context.bind_aws_session`."""
    _context.bind_aws_session(session)


def resolve_session(session: AwsSession | None, who: str) -> AwsSession:
    """``session`` or the running test's; a clear error when a fault is used without the fixture."""
    found = session or _context.aws_session()
    if found is None:
        raise AwsError(f"{who}: no AWS session; request the `aws` fixture in the test or pass session=aws")
    return found


class AwsSession:
    """boto3 clients for one test, plus the mutation gate (allow-list, dry-run plan)."""

    def __init__(
        self,
        mode: str = MOTO,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        dry_run: bool = False,
        allowed_accounts: Iterable[str] = (),
        allowed_regions: Iterable[str] = (),
        profile: str | None = None,
    ) -> None:
        if mode not in MODES:
            raise AwsError(f"AWS mode {mode!r} is not one of {', '.join(MODES)}")
        if mode == MOTO and not endpoint_url:
            raise AwsError("moto mode needs the endpoint_url of a moto server")
        self.mode = mode
        self.dry_run = dry_run
        self.endpoint_url = endpoint_url if mode == MOTO else None
        self.allowed_accounts = frozenset(str(a).strip() for a in allowed_accounts if str(a).strip())
        self.allowed_regions = frozenset(str(r).strip() for r in allowed_regions if str(r).strip())
        if mode == MOTO:
            self.boto = boto3.session.Session(region_name=region or DEFAULT_REGION, **_DUMMY_CREDENTIALS)
        else:
            self.boto = boto3.session.Session(region_name=region, profile_name=profile)
        if not self.boto.region_name:
            raise AwsError("real AWS needs a region: pass --resiliency-aws-region or set AWS_REGION")
        self.region: str = self.boto.region_name
        # moto answers at once; a broken call should fail fast rather than retry for seconds
        attempts = 2 if mode == MOTO else 5
        self._config = Config(retries={"total_max_attempts": attempts, "mode": "standard"}, connect_timeout=5)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._verified: str | None = None
        self.plan: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []

    def __repr__(self) -> str:
        where = self.endpoint_url or f"region {self.region}"
        return f"<AwsSession {self.mode} {where}{' dry-run' if self.dry_run else ''}>"

    # -- clients -----------------------------------------------------------------

    def client(self, service: str) -> Any:
        """The (cached) boto3 client for ``service``."""
        with self._lock:
            found = self._clients.get(service)
            if found is None:
                found = self.boto.client(service, endpoint_url=self.endpoint_url, config=self._config)
                self._clients[service] = found
            return found

    @property
    def clients(self) -> list[Any]:
        with self._lock:
            return list(self._clients.values())

    # -- the gate ----------------------------------------------------------------

    @property
    def account_id(self) -> str:
        """The caller's account, from STS (read-only)."""
        return str(self.client("sts").get_caller_identity()["Account"])

    def verify(self) -> str:
        """Refuse real AWS unless both the region and the account are allow-listed.

        The region is checked before any call; the account needs one read-only STS call.
        moto is always allowed. Returns the account id.
        """
        if self._verified is not None:
            return self._verified
        if self.mode == MOTO:
            self._verified = "moto"
            return self._verified
        if self.region not in self.allowed_regions:
            raise AwsRefused(
                f"real AWS refused: region {self.region!r} is not in ini resiliency_allowed_regions "
                f"({', '.join(sorted(self.allowed_regions)) or 'empty'})"
            )
        account = self.account_id
        if account not in self.allowed_accounts:
            raise AwsRefused(
                f"real AWS refused: account {account} is not in ini resiliency_allowed_accounts "
                f"({', '.join(sorted(self.allowed_accounts)) or 'empty'})"
            )
        self._verified = account
        return account

    def mutate(self, service: str, operation: str, **params: Any) -> dict[str, Any] | None:
        """Make a mutating call, or in dry-run record it in the plan and return ``None``."""
        self.verify()
        entry = {"at": time.time(), "service": service, "operation": operation, "params": _plain(params)}
        experiment = _context.experiment()
        if experiment is not None:
            kind = "aws-planned" if self.dry_run else "aws-call"
            experiment.record_event(kind, f"{service}.{operation}", entry["at"], params=entry["params"])
        if self.dry_run:
            self.plan.append(entry)
            logging.getLogger("pytest_resiliency.aws").info("dry-run: %s.%s(%s)", service, operation, params)
            return None
        self.calls.append(entry)
        result: dict[str, Any] = getattr(self.client(service), operation)(**params)
        return result

    def plan_lines(self) -> list[str]:
        """The dry-run plan, one line a call, for people."""
        return [f"{p['service']}.{p['operation']}({_kwargs(p['params'])})" for p in self.plan]


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _kwargs(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items())
