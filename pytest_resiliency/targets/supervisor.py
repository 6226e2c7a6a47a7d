"""The supervisor process: runs one service command and restarts it according to its policy.

Why a separate process: a service must keep being supervised (restarted after a kill) while
the test's own thread is busy, and it must die with pytest even when pytest is SIGKILLed.
The supervisor reads commands from its stdin (``restart``, ``stop``) and treats EOF — pytest
closing the pipe or dying — as ``stop``: it terminates the service's whole process group.
It reports lifecycle events as JSON lines on stdout (``started``, ``exited``, ``gave-up``,
``stopped``) with wall-clock times. Exits are seen at once through a pidfd, not by polling.

Standard library only, started as ``python -I -S supervisor.py SPEC_JSON``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import signal
import subprocess
import sys
import time
from typing import IO, Any

POLICIES = ("always", "on-failure", "never")


@functools.cache
def _procfs() -> Any:
    """:mod:`pytest_resiliency.procfs`, loaded by its path: this script runs outside the package."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "procfs.py")
    spec = importlib.util.spec_from_file_location("_resiliency_procfs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _start_ticks(pid: int) -> int | None:
    start: int | None = _procfs().start_time(pid)
    return start


class Supervisor:
    def __init__(self, spec: dict[str, Any], out: IO[str]) -> None:
        self.spec = spec
        self.out = out
        self.child: subprocess.Popen[bytes] | None = None
        self.pidfd: int | None = None
        self.started_at = 0.0
        self.failures = 0
        self.restarts = 0

    def emit(self, event: str, **fields: Any) -> None:
        self.out.write(json.dumps({"event": event, "at": time.time(), **fields}) + "\n")
        self.out.flush()

    def start(self) -> bool:
        command = list(self.spec["command"])
        user = self.spec.get("user")  # [uid, gid, home] resolved by the parent: drop privileges
        drop: dict[str, Any] = {}
        if user is not None and self.spec.get("netns"):
            # ``ip netns exec`` needs root: enter the namespace first, then drop privileges.
            command = ["setpriv", f"--reuid={user[0]}", f"--regid={user[1]}", "--clear-groups", *command]
        elif user is not None:
            drop = {"user": user[0], "group": user[1], "extra_groups": []}
        if self.spec.get("netns"):
            command = ["ip", "netns", "exec", self.spec["netns"], *command]
        env = {**os.environ, **self.spec.get("env", {})}
        if user is not None:
            env.setdefault("HOME", user[2])
        with open(self.spec["log"], "ab") as log:
            log.write(f"--- start {time.strftime('%H:%M:%S')} (restart {self.restarts}) ---\n".encode())
            log.flush()
            try:
                self.child = self._spawn(command, env, log, drop)
            except OSError as exc:  # not executable, missing, or not reachable by the dropped user
                log.write(f"cannot start {command[0]}: {exc}\n".encode())
                self.emit("gave-up", code=None, error=f"cannot start {command[0]}: {exc}")
                return False
        self.pidfd = os.pidfd_open(self.child.pid)
        self.started_at = time.monotonic()
        self.emit("started", pid=self.child.pid, start=_start_ticks(self.child.pid), restarts=self.restarts)
        return True

    def _spawn(self, command: list[str], env: dict[str, str], log: IO[bytes], drop: dict[str, Any]) -> Any:
        return subprocess.Popen(
            command,
            cwd=self.spec.get("cwd") or None,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop and kill reach every child
            **drop,
        )

    def reap(self) -> int:
        assert self.child is not None
        code = self.child.wait()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        pid = self.child.pid
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # leftovers of the group (a shell's children)
        self.child = None
        self.emit("exited", pid=pid, code=code)
        return code

    def terminate(self) -> None:
        """Stop signal (SIGTERM) to the group, SIGCONT in case it is paused, SIGKILL after ``stop_timeout``."""
        if self.child is None:
            return
        pid = self.child.pid
        for signum in (int(self.spec.get("stop_signal", signal.SIGTERM)), signal.SIGCONT):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signum)
        assert self.pidfd is not None
        ready, _, _ = select.select([self.pidfd], [], [], float(self.spec.get("stop_timeout", 5.0)))
        if not ready:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        self.reap()

    def restart_delay(self) -> float:
        delay = float(self.spec.get("delay", 1.0)) * float(self.spec.get("backoff", 1.0)) ** max(0, self.failures - 1)
        return min(delay, float(self.spec.get("max_delay", 30.0)))

    def should_restart(self, code: int) -> bool:
        policy = self.spec.get("restart", "always")
        limit = self.spec.get("max_restarts")
        if limit is not None and self.restarts >= int(limit):
            return False
        return policy == "always" or (policy == "on-failure" and code != 0)

    def command(self, line: str) -> bool:
        """Handle one stdin line; returns False when the supervisor must stop."""
        word = line.strip()
        if word == "restart":
            self.terminate()
            self.restarts += 1
            self.start()
            return True
        return word != "stop"

    def run(self) -> int:
        stdin = sys.stdin.fileno()
        if not self.start():
            return 1
        restart_at: float | None = None
        buffered = b""
        while True:
            waits = [stdin] + ([self.pidfd] if self.pidfd is not None else [])
            timeout = None if restart_at is None else max(0.0, restart_at - time.monotonic())
            ready, _, _ = select.select(waits, [], [], timeout)
            if self.pidfd is not None and self.pidfd in ready:
                ran = time.monotonic() - self.started_at
                code = self.reap()
                self.failures = 1 if ran >= float(self.spec.get("reset_after", 10.0)) else self.failures + 1
                if self.should_restart(code):
                    restart_at = time.monotonic() + self.restart_delay()
                else:
                    self.emit("gave-up", code=code)
            if stdin in ready:
                data = os.read(stdin, 4096)
                if not data:
                    break
                buffered += data
                while b"\n" in buffered:
                    line, buffered = buffered.split(b"\n", 1)
                    if line.strip() == b"restart":
                        restart_at = None
                    if not self.command(line.decode()):
                        self.terminate()
                        self.emit("stopped")
                        return 0
            if restart_at is not None and time.monotonic() >= restart_at and self.child is None:
                restart_at = None
                self.restarts += 1
                self.start()
        self.terminate()
        self.emit("stopped")
        return 0


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # pytest, not the terminal, decides when we stop
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    spec = json.loads(argv[0])
    supervisor = Supervisor(spec, sys.stdout)
    try:
        return supervisor.run()
    finally:
        supervisor.terminate()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
