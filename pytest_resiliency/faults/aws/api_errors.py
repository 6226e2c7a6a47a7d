"""AWS API errors injected into boto3 calls made in this process, through botocore's event hooks.

A ``before-call.<service>.<Operation>`` handler answers for the call, so the error
is raised by botocore exactly as a real one would be (a ``ClientError`` with the code,
no request sent, no retry). It is registered on the test's clients, on clients the
test passes in, and on the botocore sessions they come from, so clients created
later (including by ``boto3.client``) see it too. Unregistered on revert.
"""

from __future__ import annotations

import random
import re
import threading
import uuid
from collections.abc import Iterable
from typing import Any

import boto3  # type: ignore[import-untyped,unused-ignore]
import botocore.session  # type: ignore[import-untyped,unused-ignore]
from botocore.awsrequest import AWSResponse  # type: ignore[import-untyped,unused-ignore]

from ...aws.session import AwsSession, current_session
from ..base import Fault, FaultError

_ERROR_RE = re.compile(r"^[A-Za-z][A-Za-z0-9.]{0,99}$")


def _operation_names(service: str) -> dict[str, str]:
    """snake_case and PascalCase names of ``service``'s operations -> PascalCase."""
    session = botocore.session.get_session()
    try:
        model = session.get_service_model(service)
    except Exception:
        available = ", ".join(session.get_available_services()[:12])
        raise FaultError(
            f"aws_api_errors: unknown service {service!r} (botocore names such as {available}...)"
        ) from None
    names: dict[str, str] = {}
    for op in model.operation_names:
        names[op] = op
        names[botocore.xform_name(op)] = op
    return names


class AwsApiErrors(Fault):
    """Fail a fraction (``rate``) of the matching boto3 calls with ``error``."""

    kind = "aws-api-errors"

    def __init__(
        self,
        service: str,
        operations: Iterable[str] | str = "*",
        *,
        error: str = "ThrottlingException",
        rate: float = 0.5,
        status: int = 400,
        message: str = "injected by pytest-resiliency",
        clients: Iterable[Any] = (),
        seed: int | None = None,
        session: AwsSession | None = None,
        max_duration: float | str | None = None,
    ) -> None:
        super().__init__(name=f"aws-api-errors {service}", max_duration=max_duration)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 1:
            raise FaultError(f"aws_api_errors: rate={rate!r} must be a fraction with 0 < rate <= 1")
        if not isinstance(error, str) or not _ERROR_RE.match(error):
            raise FaultError(f"aws_api_errors: error={error!r} must be an AWS error code such as 'ThrottlingException'")
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise FaultError(f"aws_api_errors: status={status!r} must be an HTTP error status 400..599")
        known = _operation_names(service)
        requested = [operations] if isinstance(operations, str) else list(operations)
        if requested == ["*"]:
            self.operations = sorted(set(known.values()))
            self._events = [f"before-call.{self._service_id(service)}"]
        else:
            unknown = [op for op in requested if op not in known]
            if unknown or not requested:
                raise FaultError(
                    f"aws_api_errors: {service} has no operation {', '.join(map(repr, unknown)) or '(none given)'}; "
                    f"use names such as {', '.join(sorted(set(known.values()))[:4])} or '*'"
                )
            self.operations = sorted({known[op] for op in requested})
            self._events = [f"before-call.{self._service_id(service)}.{op}" for op in self.operations]
        self.service = service
        self.error = error
        self.rate = float(rate)
        self.status = status
        self.message = message
        self._extra_clients = list(clients)
        self._session = session
        self._random = random.Random(seed)
        self._uid = f"pytest-resiliency-{uuid.uuid4().hex}"
        self._registered: list[Any] = []
        self._enabled = False
        self._count_lock = threading.Lock()
        self.calls = 0
        self.injected = 0

    @staticmethod
    def _service_id(service: str) -> str:
        model = botocore.session.get_session().get_service_model(service)
        return str(model.service_id.hyphenize())

    def _handler(self, **kwargs: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if not self._enabled:  # clients created during the fault keep a copy of the handler
            return None
        with self._count_lock:
            self.calls += 1
            if self._random.random() >= self.rate:
                return None
            self.injected += 1
        parsed = {
            "Error": {"Code": self.error, "Message": self.message},
            "ResponseMetadata": {"HTTPStatusCode": self.status, "HTTPHeaders": {}, "RetryAttempts": 0},
        }
        return AWSResponse("injected://pytest-resiliency", self.status, {}, None), parsed

    def _emitters(self) -> list[Any]:
        emitters: list[Any] = []
        session = self._session or current_session()
        if session is not None:
            emitters.append(session.boto._session)  # clients created later from the test's session
            emitters.extend(c.meta.events for c in session.clients)
        emitters.append(boto3._get_default_session()._session)  # boto3.client(...) made later in this process
        emitters.extend(c.meta.events for c in self._extra_clients)
        unique: list[Any] = []
        for e in emitters:
            if all(e is not u for u in unique):
                unique.append(e)
        return unique

    def _inject(self) -> None:
        self._enabled = True
        for emitter in self._emitters():
            self._registered.append(emitter)
            for event in self._events:
                emitter.register(event, self._handler, unique_id=f"{self._uid}-{event}")

    def _revert(self) -> None:
        self._enabled = False
        registered, self._registered = self._registered, []
        for emitter in registered:
            for event in self._events:
                emitter.unregister(event, self._handler, unique_id=f"{self._uid}-{event}")

    @property
    def target(self) -> str | None:
        ops = "*" if len(self.operations) > 5 and self._events[0].count(".") == 1 else ",".join(self.operations)
        return f"{self.service}:{ops}"

    def params(self) -> dict[str, Any]:
        return {
            **super().params(),
            "service": self.service,
            "operations": self.operations if len(self.operations) <= 20 else ["*"],
            "error": self.error,
            "rate": self.rate,
            "status": self.status,
        }


def aws_api_errors(
    service: str,
    operations: Iterable[str] | str = "*",
    *,
    error: str = "ThrottlingException",
    rate: float = 0.5,
    status: int = 400,
    clients: Iterable[Any] = (),
    seed: int | None = None,
    session: AwsSession | None = None,
    max_duration: float | str | None = None,
) -> AwsApiErrors:
    """Make ``rate`` of the boto3 calls to ``service``'s ``operations`` fail with ``error`` in this process."""
    return AwsApiErrors(
        service,
        operations,
        error=error,
        rate=rate,
        status=status,
        clients=clients,
        seed=seed,
        session=session,
        max_duration=max_duration,
    )


__all__ = ["AwsApiErrors", "aws_api_errors"]
