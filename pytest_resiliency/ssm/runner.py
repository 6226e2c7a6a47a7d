"""A local runner: executes a document's ``aws:runShellScript`` steps on this machine.

It does what the SSM agent does with a Command document, so the shipped documents are
exercised for real here: parameters are checked against the document (and refused
when they contain a control character), ``{{ param }}`` is substituted, each step runs
in ``bash`` in its own session (inside a network namespace when asked), and the step's
``timeoutSeconds`` is enforced. Every process the run started carries a marker in its
environment, so :meth:`LocalRun.stop` finds and kills all of them, even those a
document detached with ``setsid`` (its dead-man watcher).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from ..host import end_group
from ..waiting import until
from .documents import Document, load

MARKER = "PYTEST_RESILIENCY_SSM_RUN"
TERMINAL = ("Success", "Failed", "TimedOut", "Cancelled")


@dataclass
class StepResult:
    name: str
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    started_at: float = 0.0
    ended_at: float | None = None
    status: str = "Pending"


@dataclass
class RunResult:
    document: str
    steps: list[StepResult] = field(default_factory=list)

    @property
    def status(self) -> str:
        """SSM's overall status: the first step that did not succeed decides."""
        for step in self.steps:
            if step.status != "Success":
                return step.status
        return "Success"

    @property
    def ok(self) -> bool:
        return self.status == "Success"

    @property
    def stdout(self) -> str:
        return "".join(s.stdout for s in self.steps)

    @property
    def stderr(self) -> str:
        return "".join(s.stderr for s in self.steps)


class LocalRun:
    """One execution of a document; ``start()`` returns at once, ``wait()`` for the end, ``stop()`` to cancel."""

    def __init__(
        self,
        document: Document | str | Path,
        parameters: dict[str, Any] | None = None,
        *,
        netns: str | None = None,
        state_dir: str | Path | None = None,
        timeout: float | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.document = document if isinstance(document, Document) else load(document)
        self.values = self.document.values(parameters)  # DocumentError before anything runs
        self.scripts = self.document.render(self.values)
        if netns is not None and not shutil.which("ip"):
            raise RuntimeError("running in a network namespace needs `ip` (iproute2)")
        self.netns = netns
        self.run_id = uuid.uuid4().hex
        self._tmp = tempfile.mkdtemp(prefix="ssm-run-")
        self.state_dir = Path(state_dir) if state_dir else Path(self._tmp) / "state"
        self.timeout = timeout
        self.env = {**os.environ, **(env or {}), MARKER: self.run_id, "RESILIENCY_STATE_DIR": str(self.state_dir)}
        self.result = RunResult(self.document.name)
        self._proc: subprocess.Popen[str] | None = None
        self._cancelled = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LocalRun:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalRun:
        self._thread = threading.Thread(target=self._run, name=f"ssm-run-{self.document.name}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for index, (step, script) in enumerate(self.scripts):
                result = StepResult(step.name, started_at=time.time(), status="InProgress")
                self.result.steps.append(result)
                if self._cancelled.is_set():
                    result.status = "Cancelled"
                    break
                path = Path(self._tmp) / f"step-{index}.sh"
                path.write_text(script, encoding="utf-8")
                command = ["bash", str(path)]
                if self.netns:
                    command = ["ip", "netns", "exec", self.netns, *command]
                limit = (
                    min(x for x in (step.timeout_seconds, self.timeout) if x is not None)
                    if (step.timeout_seconds or self.timeout)
                    else None
                )
                self._proc = subprocess.Popen(
                    command,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=self.env,
                    cwd=self._tmp,
                    start_new_session=True,
                )
                try:
                    out, err = self._proc.communicate(timeout=limit)
                    timed_out = False
                except subprocess.TimeoutExpired:
                    self._terminate_group()
                    out, err = self._proc.communicate()
                    timed_out = True
                result.stdout, result.stderr, result.returncode = out, err, self._proc.returncode
                result.ended_at = time.time()
                if self._cancelled.is_set():
                    result.status = "Cancelled"
                elif timed_out:
                    result.status = "TimedOut"
                else:
                    result.status = "Success" if self._proc.returncode == 0 else "Failed"
                if result.status != "Success":
                    break
        finally:
            self._done.set()

    def _terminate_group(self, grace: float = 5.0) -> None:
        """SIGTERM the step's process group (its trap rolls back), SIGKILL what is left after ``grace``.

        The group is signalled even when its leader is gone: after a ``kill -9`` of the
        script its children (a ``sleep``, ``stress-ng``) are still in it.
        """
        proc = self._proc
        if proc is not None:
            end_group(proc.pid, grace)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    def wait(self, timeout: float | None = None) -> RunResult:
        """Block until every step ended (or ``timeout``); the result so far."""
        self._done.wait(timeout)
        return self.result

    def processes(self) -> list[psutil.Process]:
        """Every live process this run started, found by the marker in its environment."""
        found = []
        for proc in psutil.process_iter(["pid"]):
            try:
                if proc.environ().get(MARKER) == self.run_id:
                    found.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return found

    def stop(self, grace: float = 5.0) -> RunResult:
        """Cancel: SIGTERM the step (rollback by its trap), let its dead-man watcher finish, kill the rest."""
        self._cancelled.set()
        self._terminate_group(grace)
        self._done.wait(grace + 5)
        until(lambda: not self.processes(), grace, 0.1)  # the dead-man watcher exits on its own
        for proc in self.processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        shutil.rmtree(self._tmp, ignore_errors=True)
        return self.result


def run(
    document: Document | str | Path,
    parameters: dict[str, Any] | None = None,
    *,
    timeout: float | None = None,
    **kw: Any,
) -> RunResult:
    """Run a document to the end and clean up; the result."""
    with LocalRun(document, parameters, timeout=timeout, **kw) as local:
        local.wait(None if timeout is None else timeout + 10)
    return local.result


def netem_available() -> tuple[bool, str]:
    """Whether ``tc netem`` works here (tried in a scratch network namespace); the reason when not."""
    if not shutil.which("tc") or not shutil.which("ip"):
        return False, "tc/ip (iproute2) are not installed"
    name = f"netemcheck{uuid.uuid4().hex[:8]}"
    if subprocess.run(["ip", "netns", "add", name], capture_output=True, check=False).returncode != 0:
        return False, "cannot create a network namespace (needs root)"
    try:
        tried = subprocess.run(
            ["ip", "netns", "exec", name, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    if tried.returncode != 0:
        return False, f"tc netem does not work on this kernel: {tried.stderr.strip()}"
    return True, ""
