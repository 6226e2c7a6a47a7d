"""The pytest item of one Chaos Toolkit experiment file.

It is a :class:`pytest.Function` built on a generated function whose signature names the
fixtures it needs (``experiment`` plus the extension's ``fixtures``), so fixtures, the
``resiliency`` marker, the plugin's verdict wrapper, reports and xdist treat it exactly
like a test function. Phases map onto pytest's: the hypothesis *before* runs in setup (a
probe that raises or a steady state not met is an ERROR, like a fixture error), the
method, the hypothesis *after* and the rollbacks run in the call (a failure FAILS it).
"""

from __future__ import annotations

import contextlib
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
        from .runner import Interrupter

        self.run: StrictRun | None = None
        self.interrupter: Interrupter = Interrupter(self._tell)
        self._saved_env: dict[str, str | None] = {}

    @classmethod
    def create(cls, parent: pytest.Collector, spec: Spec) -> ExperimentItem:
        item: ExperimentItem = cls.from_parent(parent, name=spec.item_name, spec=spec)
        from .tags import tag_marker

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
        from .options import options_of
        from .runner import CtkError, ExperimentInterrupted, SteadyStateNotMet, StrictRun

        self.interrupter.install()  # from here to the end of teardown: SIGUSR1/2 interrupt this experiment only
        options = options_of(self.config)
        super().setup()  # the fixtures: experiment, aws, the extension's
        self._export_env(options.env)
        self._export_aws_env()
        experiment: Experiment = self.funcargs["experiment"]  # type: ignore[assignment]
        self.run = run = StrictRun(self.spec, experiment, options, self.interrupter)
        experiment.attach("ctk-journal", run.bounded_journal)
        dry = bool(self.config.getoption("resiliency_dry_run", False))
        problem = None
        try:
            run.prepare(dry=dry)
            if dry:
                self._plan(run)
                return
            run.begin()
            run.before()
        except (CtkError, SteadyStateNotMet) as exc:
            problem = str(exc)
        except ExperimentInterrupted as exc:
            problem = f"Chaos Toolkit experiment interrupted before the method (nothing injected): {exc.reason}"
            run.finish("interrupted")
        if problem is not None:  # outside the except: the report shows the reason, not a chained traceback
            if run.runtime.rollback_strategy == "always":
                run.rollback()  # as chaos run: "always" plays them even when the method never ran
            pytest.fail(problem, pytrace=False)

    def _plan(self, run: StrictRun) -> None:
        """``--resiliency-dry-run``: validated, configuration resolved, plan printed, nothing executed."""
        import json

        from ..aws.fixtures import PLAN_PROPERTY

        lines = run.plan()
        self.user_properties.append((PLAN_PROPERTY, json.dumps(lines)))
        pytest.skip(f"--resiliency-dry-run: experiment valid, {len(lines) - 1} activities planned, none executed")

    def runtest(self) -> None:
        from .runner import ExperimentInterrupted

        assert self.run is not None
        run = self.run
        status = "interrupted"
        try:
            run.method()
            run.after()
            status = "completed"
        except ExperimentInterrupted:
            pass  # recorded in run.interrupted; the rollbacks run below
        except KeyboardInterrupt:
            self.interrupter.hold_sigint()  # a second Ctrl-C must not cut the rollbacks or lose the reports
            raise
        finally:
            try:
                run.rollback()
            finally:
                run.finish("interrupted" if run.interrupted else status if not run.failures else "failed")
                run.end()
        if run.interrupted:
            # A safeguard is a stop condition: the experiment was aborted, not judged (an ERROR).
            run.experiment.abort(f"Chaos Toolkit experiment interrupted: {run.interrupted}; rollbacks ran")
            return
        if run.failures:
            pytest.fail("Chaos Toolkit experiment failed:\n  " + "\n  ".join(run.failures), pytrace=False)

    def teardown(self) -> None:
        try:
            if self.run is not None:
                self.run.close()
        finally:
            try:
                self._restore_env()
                super().teardown()
            finally:
                self.interrupter.restore()

    # -- AWS ---------------------------------------------------------------------

    def _tell(self, text: str) -> None:
        """A line on the terminal now, past pytest's output capture (a Ctrl-C notice)."""
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        writer = self.config.get_terminal_writer()
        with capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext():
            writer.line()
            writer.line(text, yellow=True)

    def _export_env(self, env: dict[str, str]) -> None:
        """Environment variables of ``.env`` var files, for this item only (chaos run sets them for good)."""
        for key, value in env.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

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
