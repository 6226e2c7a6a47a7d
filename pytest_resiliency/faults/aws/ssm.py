"""Run an SSM Command document on instances as a fault: send, poll every invocation, cancel on revert.

Unlike Chaos Toolkit's SSM action, the command is followed to the end: on revert the
invocations still running are cancelled (the documents roll back on SIGTERM), every
invocation is polled to a terminal state, and any that failed or timed out fails the
revert with that instance's error output. moto never executes SSM commands: against it
this checks the API choreography only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ... import validate
from ...aws.session import AwsSession
from ...ssm.documents import Document, DocumentError, find
from ...targets.aws import Selector
from ..base import FaultError
from ._base import AwsFault, poll_until

TERMINAL = ("Success", "Cancelled", "TimedOut", "Failed")
FAILED = ("TimedOut", "Failed")


class SsmDocument(AwsFault):
    """Send ``document`` to the selected instances for the ``with`` body."""

    kind = "ssm-document"
    resource_kind = "ec2:instance"

    def __init__(
        self,
        document: str | Path,
        targets: Selector | str | Iterable[str],
        parameters: dict[str, Any] | None = None,
        *,
        poll: float | str = "2s",
        timeout: float | str = "10m",
        comment: str = "pytest-resiliency fault",
        **kw: Any,
    ) -> None:
        super().__init__(targets, **kw)
        try:
            self.document: Document | None = find(document)
            self.values = (
                self.document.values(parameters)
                if self.document
                else {k: str(v) for k, v in (parameters or {}).items()}
            )
        except DocumentError as exc:
            raise FaultError(str(exc)) from None
        self.document_ref = str(document)
        self.document_name = self.document.ssm_name if self.document else str(document)
        self.poll = validate.duration(poll, f"faults.{self.kind}: poll")
        self.timeout = validate.duration(timeout, f"faults.{self.kind}: timeout")
        self.comment = comment
        self.command_id: str | None = None
        self.statuses: dict[str, dict[str, Any]] = {}
        self._cancelled = False

    def _ensure_document(self) -> None:
        if self.document is None:
            return  # an existing document (AWS-RunShellScript, AWSFIS-Run-CPU-Stress...)
        ssm = self.session.client("ssm")
        try:
            found = ssm.describe_document(Name=self.document_name)["Document"]
        except ssm.exceptions.InvalidDocument:
            found = None
        if found is not None:
            if found.get("Hash") not in (None, self.document.sha256):
                raise FaultError(f"{self.kind}: SSM document {self.document_name} exists with other content")
            return
        self.mutate(
            "ssm",
            "create_document",
            Content=self.document.content,
            Name=self.document_name,
            DocumentType="Command",
            DocumentFormat=self.document.format,
        )

    def _inject(self) -> None:
        if not self.resolve():
            return
        self._ensure_document()
        sent = self.mutate(
            "ssm",
            "send_command",
            DocumentName=self.document_name,
            InstanceIds=self.ids,
            Parameters={k: [v] for k, v in self.values.items()},
            Comment=self.comment[:100],
        )
        if sent is not None:
            self.command_id = sent["Command"]["CommandId"]

    def invocations(self) -> dict[str, dict[str, Any]]:
        """Each instance's invocation now: status, details, stdout, stderr."""
        if self.command_id is None:
            return {}
        ssm = self.session.client("ssm")
        for instance in self.ids:
            if self.statuses.get(instance, {}).get("Status") in TERMINAL:
                continue
            try:
                got = ssm.get_command_invocation(CommandId=self.command_id, InstanceId=instance)
            except ssm.exceptions.InvocationDoesNotExist:
                got = {"Status": "Pending"}  # not registered yet, right after send_command
            self.statuses[instance] = {
                "Status": got.get("Status"),
                "StatusDetails": got.get("StatusDetails"),
                "StandardOutputContent": got.get("StandardOutputContent", ""),
                "StandardErrorContent": got.get("StandardErrorContent", ""),
                "ResponseCode": got.get("ResponseCode"),
            }
        return dict(self.statuses)

    def done(self) -> bool:
        return all(s.get("Status") in TERMINAL for s in self.invocations().values())

    def wait(self, timeout: float | str | None = None) -> dict[str, dict[str, Any]]:
        """Block until every invocation reached a terminal state; raises on a failed one."""
        if self.command_id is None:
            return {}
        limit = self.timeout if timeout is None else validate.duration(timeout, f"faults.{self.kind}: timeout")
        poll_until(
            lambda: True if self.done() else None,
            timeout=limit,
            every=self.poll,
            what=f"{self.kind} {self.document_name} command {self.command_id}",
            session=self.session,
        )
        self._raise_failures()
        return dict(self.statuses)

    def _raise_failures(self) -> None:
        failed = {i: s for i, s in self.statuses.items() if s.get("Status") in FAILED}
        if failed:
            lines = [
                f"{i}: {s['Status']} ({s.get('StatusDetails')}): {(s.get('StandardErrorContent') or '').strip()[-500:]}"
                for i, s in sorted(failed.items())
            ]
            raise FaultError(f"{self.kind} {self.document_name} failed on " + "; ".join(lines))

    def _revert(self) -> None:
        if self.command_id is None:
            return
        pending = [i for i, s in self.invocations().items() if s.get("Status") not in TERMINAL]
        if pending:
            self._cancelled = True
            self.mutate("ssm", "cancel_command", CommandId=self.command_id, InstanceIds=pending)
        with contextlib.suppress(FaultError):  # what is still running is named below
            poll_until(
                lambda: True if self.done() else None,
                timeout=self.timeout,
                every=self.poll,
                what=f"{self.kind} cancel",
                session=self.session,
            )
        unfinished = [i for i, s in self.statuses.items() if s.get("Status") not in TERMINAL]
        if unfinished:
            raise FaultError(f"{self.kind}: command {self.command_id} still running on {unfinished} after cancel")
        self._raise_failures()

    def params(self) -> dict[str, Any]:
        return {
            **super().params(),
            "document": self.document_ref,
            "ssm_document": self.document_name,
            "parameters": dict(self.values),
            "command_id": self.command_id,
        }


def ssm_document(
    document: str | Path,
    targets: Selector | str | Iterable[str],
    parameters: dict[str, Any] | None = None,
    *,
    poll: float | str = "2s",
    timeout: float | str = "10m",
    session: AwsSession | None = None,
    max_duration: float | str | None = None,
) -> SsmDocument:
    """Run an SSM document (a shipped name such as ``"memory-stress"``, a file, or an SSM name) as a fault."""
    return SsmDocument(
        document, targets, parameters, poll=poll, timeout=timeout, session=session, max_duration=max_duration
    )


__all__ = ["SsmDocument", "ssm_document"]
