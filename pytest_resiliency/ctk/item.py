"""The pytest item of one Chaos Toolkit experiment file.

It is a :class:`pytest.Function` built on a generated function whose signature names the
fixtures it needs (``experiment`` plus the extension's ``fixtures``), so fixtures, the
``resiliency`` marker, the plugin's verdict wrapper, reports and xdist treat it exactly
like a test function. Phases map onto pytest's: the hypothesis *before* runs in setup (a
probe that raises or a steady state not met is an ERROR, like a fixture error), the
method, the hypothesis *after* and the rollbacks run in the call (a failure FAILS it).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .spec import Spec

if TYPE_CHECKING:
    from ..experiment import Experiment
    from .runner import StrictRun

MISSING_CHAOSLIB = "chaostoolkit-lib is not installed: pip install 'pytest-resiliency[ctk]' to run experiment files"
_AWS_ENV = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
_REGION_ENV = ("AWS_DEFAULT_REGION", "AWS_REGION")


def fixtures_of(spec: Spec) -> list[str]:
    """``experiment`` first, the AWS session when the experiment is tagged ``aws``, then the extension's."""
    names = ["experiment"]
    if "aws" in spec.tags:
        names.append("aws")
    names += [name for name in spec.fixtures if name not in names]
    return names


def _function_for(spec: Spec) -> Callable[..., None]:
    """A function whose signature is the fixture list: pytest resolves its closure as usual."""

    def experiment_file(**fixtures: Any) -> None:
        """Runs a Chaos Toolkit experiment (see ExperimentItem.runtest)."""

    params = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in fixtures_of(spec)]
    experiment_file.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return experiment_file


def chaoslib_available() -> bool:
    try:
        import chaoslib.activity  # type: ignore[import-untyped,unused-ignore]  # noqa: F401
    except ImportError:
        return False
    return True


class ExperimentItem(pytest.Function):
    """A Chaos Toolkit experiment run strictly (see :mod:`pytest_resiliency.ctk.runner`)."""

    def __init__(self, *, spec: Spec, **kwargs: Any) -> None:
        super().__init__(callobj=_function_for(spec), **kwargs)
        self.spec = spec
        self.run: StrictRun | None = None
        self._saved_env: dict[str, str | None] = {}

    @classmethod
    def create(cls, parent: pytest.Collector, spec: Spec) -> ExperimentItem:
        item: ExperimentItem = cls.from_parent(parent, name=spec.item_name, spec=spec)
        from .collect import tag_marker

        item.add_marker("ctk")
        for tag in spec.tags:
            item.add_marker(tag_marker(tag))
        item.add_marker(pytest.mark.resiliency(**spec.budget))
        return item

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"experiment: {self.spec.title}"

    # -- phases ------------------------------------------------------------------

    def setup(self) -> None:
        if not chaoslib_available():
            pytest.skip(MISSING_CHAOSLIB)
        super().setup()  # the fixtures: experiment, aws, the extension's
        self._export_aws_env()
        from .runner import CtkError, SteadyStateNotMet, StrictRun

        experiment: Experiment = self.funcargs["experiment"]  # type: ignore[assignment]
        self.run = StrictRun(self.spec, experiment)
        experiment.attach("ctk-journal", self.run.bounded_journal)
        problem = None
        try:
            self.run.prepare()
            self.run.before()
        except (CtkError, SteadyStateNotMet) as exc:
            problem = str(exc)
        if problem is not None:  # outside the except: the report shows the reason, not a chained traceback
            pytest.fail(problem, pytrace=False)

    def runtest(self) -> None:
        assert self.run is not None
        run = self.run
        status = "interrupted"
        try:
            run.method()
            run.after()
            status = "completed"
        finally:
            try:
                run.rollback()
            finally:
                run.finish(status if not run.failures else "failed")
        if run.failures:
            pytest.fail("Chaos Toolkit experiment failed:\n  " + "\n  ".join(run.failures), pytrace=False)

    def teardown(self) -> None:
        try:
            if self.run is not None:
                self.run.close()
        finally:
            self._restore_env()
            super().teardown()

    # -- AWS ---------------------------------------------------------------------

    def _export_aws_env(self) -> None:
        """Point chaosaws and any boto3 client of a provider at the moto server, for this item only."""
        session = self.funcargs.get("aws")
        endpoint = getattr(session, "endpoint_url", None)
        if session is None or getattr(session, "mode", None) != "moto" or not endpoint:
            return
        values = dict.fromkeys(_AWS_ENV[1:], "testing")
        values["AWS_ENDPOINT_URL"] = str(endpoint)
        values.update(dict.fromkeys(_REGION_ENV, str(getattr(session, "region", "us-east-1"))))
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def _restore_env(self) -> None:
        saved, self._saved_env = self._saved_env, {}
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
