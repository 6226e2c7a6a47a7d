"""An AWS FIS experiment as a fault: start from a template, wait until running, stop on exit.

moto stores FIS templates but does not start experiments; tests stub those calls.
"""

from __future__ import annotations

import uuid
from typing import Any

from ... import validate
from ...aws.session import AwsSession, resolve_session
from ..base import Fault, FaultError
from ._base import poll_until

TERMINAL = ("completed", "stopped", "failed", "cancelled")
_REQUIRED = ("actions", "stopConditions", "roleArn")


class FisExperiment(Fault):
    """Create a template from ``template`` (or use an existing template id), start it, stop it on revert."""

    kind = "fis-experiment"

    def __init__(
        self,
        template: dict[str, Any] | str,
        *,
        session: AwsSession | None = None,
        poll: float | str = "2s",
        timeout: float | str = "5m",
        max_duration: float | str | None = None,
    ) -> None:
        super().__init__(max_duration=max_duration)
        if isinstance(template, dict):
            missing = [k for k in _REQUIRED if k not in template]
            if missing:
                raise FaultError(f"fis_experiment: the template lacks {', '.join(missing)} (FIS requires them)")
            self.template: dict[str, Any] | None = dict(template)
            self.template_id: str | None = None
        elif isinstance(template, str) and template:
            self.template, self.template_id = None, template
        else:
            raise FaultError(
                "fis_experiment needs a template dict (actions, targets, stopConditions, roleArn) or an id"
            )
        self._session = session
        self.poll = validate.duration(poll, "faults.fis_experiment: poll")
        self.timeout = validate.duration(timeout, "faults.fis_experiment: timeout")
        self.experiment_id: str | None = None
        self.final_state: dict[str, Any] | None = None
        self._created_template = False

    @property
    def session(self) -> AwsSession:
        found = resolve_session(self._session, "fis_experiment")
        self._session = found
        return found

    def state(self) -> dict[str, Any]:
        got = self.session.client("fis").get_experiment(id=self.experiment_id)
        return dict(got["experiment"]["state"])

    def _inject(self) -> None:
        session = self.session
        if self.template is not None:
            body = {"description": "pytest-resiliency experiment", **self.template}
            created = session.mutate("fis", "create_experiment_template", clientToken=uuid.uuid4().hex, **body)
            self._created_template = True
            self.template_id = created["experimentTemplate"]["id"] if created else "(planned template)"
        started = session.mutate(
            "fis", "start_experiment", clientToken=uuid.uuid4().hex, experimentTemplateId=self.template_id
        )
        if started is None:
            return
        self.experiment_id = started["experiment"]["id"]

        def running() -> dict[str, Any] | None:
            state = self.state()
            return state if state.get("status") in ("running", *TERMINAL) else None

        state = poll_until(running, timeout=self.timeout, every=self.poll, what=f"FIS {self.experiment_id} start")
        if state["status"] in ("failed", "stopped", "cancelled"):
            self.final_state = state
            raise FaultError(f"FIS experiment {self.experiment_id} {state['status']}: {state.get('reason', '')}")

    def _revert(self) -> None:
        session = self.session
        try:
            if self.experiment_id is not None and self.final_state is None:
                if self.state().get("status") not in TERMINAL:
                    session.mutate("fis", "stop_experiment", id=self.experiment_id)
                self.final_state = poll_until(
                    lambda: s if (s := self.state()).get("status") in TERMINAL else None,
                    timeout=self.timeout,
                    every=self.poll,
                    what=f"FIS {self.experiment_id} stop",
                )
        finally:
            if self._created_template and self.template_id and not session.dry_run:
                self._created_template = False
                session.mutate("fis", "delete_experiment_template", id=self.template_id)
        if self.final_state and self.final_state.get("status") == "failed":
            raise FaultError(f"FIS experiment {self.experiment_id} failed: {self.final_state.get('reason', '')}")

    @property
    def target(self) -> str | None:
        return f"FIS template {self.template_id}" if self.template_id else None

    def params(self) -> dict[str, Any]:
        return {
            **super().params(),
            "template_id": self.template_id,
            "experiment_id": self.experiment_id,
            "actions": sorted((self.template or {}).get("actions", {})),
        }


def fis_experiment(
    template: dict[str, Any] | str,
    *,
    session: AwsSession | None = None,
    poll: float | str = "2s",
    timeout: float | str = "5m",
    max_duration: float | str | None = None,
) -> FisExperiment:
    """Run an AWS FIS experiment for the ``with`` body (template dict as for create_experiment_template)."""
    return FisExperiment(template, session=session, poll=poll, timeout=timeout, max_duration=max_duration)


__all__ = ["FisExperiment", "fis_experiment"]
