"""Our faults and load as Chaos Toolkit python actions (``"module": "pytest_resiliency.ctk.actions"``).

Every argument is JSON, as in an experiment file. An argument written
``{"selector": "ec2_instances", "tags": {"app": "web"}, "mode": "COUNT(1)"}`` becomes the
AWS target selector of that name (:mod:`pytest_resiliency.targets.aws`). The faults record
themselves on the running test's timeline (the runner does not wrap these actions in a
fault of their own) and are reverted at the end of the test at the latest.

Each function returns builtins only: the return value lands in the CTK journal.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import context as _context
from ..errors import ConfigError
from ..experiment import Experiment
from ..validate import duration as valid_duration

if TYPE_CHECKING:
    from ..faults.base import Fault
    from ..load.run import LoadRun

__all__ = [
    "inject_fault",
    "monitor",
    "revert_faults",
    "start_load",
    "verify_writes",
    "wait_recovered",
]

_loads: weakref.WeakKeyDictionary[Experiment, list[LoadRun]] = weakref.WeakKeyDictionary()


class ProviderError(ConfigError, RuntimeError):
    """A provider called with arguments it cannot use; the message says what is accepted."""


def _experiment(who: str) -> Experiment:
    found = _context.experiment()
    if found is None:
        raise ProviderError(f"{who}: no running resiliency experiment; run the experiment file through pytest")
    return found


def _arguments(value: Any) -> Any:
    """JSON arguments, with ``{"selector": name, ...}`` mappings turned into AWS selectors."""
    if isinstance(value, dict):
        if "selector" in value:
            from ..targets import aws as targets

            name = value["selector"]
            factory = getattr(targets, str(name), None) if str(name) in targets.__all__ else None
            if factory is None or not callable(factory) or str(name)[0].isupper():
                raise ProviderError(
                    f"selector {name!r} is not one of ec2_instances, subnets, asg_groups, rds_clusters, "
                    "rds_instances, ecs_tasks, lambda_functions"
                )
            return factory(**{k: v for k, v in value.items() if k != "selector"})
        return {k: _arguments(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_arguments(v) for v in value]
    return value


def _fault(name: str, arguments: dict[str, Any] | None) -> Fault:
    from .. import faults
    from ..faults.base import Fault

    if not isinstance(name, str) or name.startswith("_"):
        raise ProviderError(f"inject_fault: fault must name a fault of pytest_resiliency.faults; got {name!r}")
    try:
        factory = getattr(faults, name)
    except AttributeError:
        raise ProviderError(f"inject_fault: pytest_resiliency.faults has no fault {name!r}") from None
    args = _arguments(arguments or {})
    if not isinstance(args, dict):
        raise ProviderError(f"inject_fault: arguments must be a mapping of the fault's keyword arguments; got {args!r}")
    fault = factory(**args)
    if not isinstance(fault, Fault):
        raise ProviderError(f"inject_fault: pytest_resiliency.faults.{name} is not a fault factory")
    return fault


def _plain(value: Any) -> Any:
    from ..report.payload import plain

    return plain(value)


def inject_fault(
    fault: str,
    arguments: dict[str, Any] | None = None,
    duration: float | str | None = None,
    wait: float | str | None = None,
) -> dict[str, Any]:
    """Inject ``faults.<fault>(**arguments)``.

    With ``duration`` the fault is held that long and reverted by this action (the CTK
    way of "inject for 60 s"); without, it stays until :func:`revert_faults` (a rollback)
    or the end of the test. ``wait`` waits that long for a fault that has ``wait()`` (an
    SSM document's invocations) to finish, then reverts it.
    """
    experiment = _experiment("inject_fault")
    made = _fault(fault, arguments)
    experiment.inject(made)
    result: Any = None
    try:
        if wait is not None:
            waiter = getattr(made, "wait", None)
            if waiter is None:
                raise ProviderError(f"inject_fault: {fault} has nothing to wait for; use duration instead")
            result = waiter(timeout=valid_duration(wait, "wait"))
        if duration is not None:
            time.sleep(valid_duration(duration, "duration"))
    except BaseException:
        made.revert()
        raise
    if duration is not None or wait is not None:
        made.revert()
    record = made.record
    summary: dict[str, Any] = _plain(
        {
            "fault": made.describe(),
            "kind": made.kind,
            "target": made.target,
            "params": made.params(),
            "injected_at": record.injected_at if record else None,
            "reverted_at": record.reverted_at if record else None,
            "result": result,
        }
    )
    return summary


def revert_faults(fault: str | None = None) -> list[str]:
    """Revert the test's active faults (all, or those whose kind or name is ``fault``); a rollback."""
    experiment = _experiment("revert_faults")
    reverted = []
    for active in reversed(experiment.active_faults):
        if fault is None or fault in (active.kind, active.name, active.kind.replace("-", "_")):
            active.revert()
            reverted.append(active.describe())
    return reverted


def start_load(
    url: str,
    users: int = 10,
    rate: float | None = None,
    writes: float | None = None,
    wait_steady: float | str | None = "30s",
    **options: Any,
) -> dict[str, Any]:
    """Start locust against ``url`` (as the ``load`` fixture does) until the end of the test.

    Its request outcomes are the main evidence of the RTO; with ``writes`` its ledger is
    what :func:`verify_writes` reads back for the RPO.
    """
    from ..load.run import LoadRun
    from ..load.spec import make_spec

    experiment = _experiment("start_load")
    spec = make_spec(url, users, rate, writes, **options)
    workdir = Path(tempfile.mkdtemp(prefix="resiliency-ctk-load-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)  # after the report has read locust's files
    traffic = LoadRun(spec, experiment, workdir)
    experiment.add_source(traffic)
    started = _loads.setdefault(experiment, [])
    experiment.attach("locust" if not started else f"locust-{len(started) + 1}", traffic.report)
    started.append(traffic)
    traffic.start()
    if wait_steady is not None:
        traffic.wait_steady(timeout=wait_steady)
    return {"url": url, "users": users, "rate": rate, "writes": writes, "pids": traffic.pids}


def monitor(
    probe: str, arguments: dict[str, Any] | None = None, every: float | str = "100ms", name: str | None = None
) -> str:
    """Run ``probes.<probe>(**arguments)`` every ``every`` until the end of the test (continuous evidence)."""
    from .. import probes

    experiment = _experiment("monitor")
    try:
        factory = getattr(probes, probe)
    except AttributeError:
        raise ProviderError(f"monitor: pytest_resiliency.probes has no probe {probe!r}") from None
    made = factory(**_arguments(arguments or {}))
    return experiment.monitor(made, every=every, name=name).name


def wait_recovered(timeout: float | str = "60s") -> bool:
    """Block until the recovery criteria hold after the last fault (or ``timeout``); the verdict judges."""
    return _experiment("wait_recovered").wait_recovered(timeout=timeout)


def verify_writes() -> dict[str, Any]:
    """Read back every write of the loads started by :func:`start_load`; the ledger gives the RPO."""
    experiment = _experiment("verify_writes")
    loads = _loads.get(experiment, [])
    if not loads:
        raise ProviderError("verify_writes: no load with writes was started by start_load in this experiment")

    def reader(keys: list[str]) -> list[str]:
        present: list[str] = []
        for traffic in loads:
            present += traffic.read_back(keys)
        return present

    ledger = experiment.verify_writes(reader)
    return {"lost": ledger.lost, "recovered": ledger.recovered, "acknowledged": ledger.acknowledged}
