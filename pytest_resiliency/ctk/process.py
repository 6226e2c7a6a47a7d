"""chaoslib's process provider, run in a process group of its own so a timeout can end all of it.

chaoslib runs ``"type": "process"`` activities with ``subprocess.run`` in pytest's own process
group: when an activity is abandoned at its ``timeout`` the process (and a ``sh -c`` script's
children) goes on running after the test and after pytest, reparented to init, and a real
fault script stays active after its rollback. This version starts the process in a new session
(``start_new_session``), keeps it findable by the thread that runs the activity, and
:func:`end_group` ends the whole group: SIGTERM, then SIGKILL after a grace period.

It returns what chaoslib's returns (``{"status", "stdout", "stderr"}``). With the
``fail_on_exit_status`` extension key a non-zero status of an activity without a tolerance
(an action, a rollback, a method probe) raises :class:`ActivityFailed` (chaoslib only logs a
warning).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

from .. import host

GRACE = 2.0  # seconds between SIGTERM and SIGKILL of an abandoned process group
_TAIL = 300

_running: dict[int, subprocess.Popen[bytes]] = {}  # activity thread ident -> its process
_lock = threading.Lock()
_strict = threading.local()


@contextlib.contextmanager
def strict_status(enabled: bool) -> Iterator[None]:
    """Within this thread, a non-zero exit status fails a process activity without a tolerance."""
    previous = getattr(_strict, "enabled", False)
    _strict.enabled = enabled
    try:
        yield
    finally:
        _strict.enabled = previous


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _TAIL else "[...] " + text[-_TAIL:]


def run_process_activity(activity: dict[str, Any], configuration: Any, secrets: Any) -> Any:
    """Drop-in for ``chaoslib.provider.process.run_process_activity`` (same arguments, same output)."""
    from chaoslib import decode_bytes, substitute  # type: ignore[import-untyped,unused-ignore]
    from chaoslib.exceptions import ActivityFailed  # type: ignore[import-untyped,unused-ignore]

    provider = activity["provider"]
    timeout = provider.get("timeout", None)
    arguments = provider.get("arguments", [])
    if arguments and (configuration or secrets):
        arguments = substitute(arguments, configuration, secrets)
    shell = False
    path = shutil.which(os.path.expanduser(provider["path"]))
    command: Any
    if isinstance(arguments, str):
        shell = True
        command = f"{path} {arguments}"
    else:
        if isinstance(arguments, dict):
            arguments = itertools.chain.from_iterable(arguments.items())
        command = [str(p) for p in arguments if p not in (None, "")]
        command.insert(0, path)
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ,
        shell=shell,
        start_new_session=True,  # its own process group: end_group() ends the script and its children
    )
    me = threading.get_ident()
    with _lock:
        _running[me] = proc
    try:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            ended = end_group(proc)
            raise ActivityFailed(
                f"process activity took too long to complete (provider timeout {timeout}s); {ended}"
            ) from None
    finally:
        with _lock:
            _running.pop(me, None)
        if proc.poll() is None:  # interrupted (Ctrl-C, an exception raised into this thread)
            end_group(proc)
    stdout, stderr = decode_bytes(out), decode_bytes(err)
    if proc.returncode != 0 and getattr(_strict, "enabled", False) and "tolerance" not in activity:
        detail = _tail(stderr) or _tail(stdout) or "no output"
        raise ActivityFailed(f"process exited with status {proc.returncode} (fail_on_exit_status): {detail}")
    return {"status": proc.returncode, "stdout": stdout, "stderr": stderr}


def running_in(thread: threading.Thread) -> subprocess.Popen[bytes] | None:
    with _lock:
        return _running.get(thread.ident or -1)


def end_group(proc: subprocess.Popen[bytes], grace: float = GRACE) -> str:
    """SIGTERM the process group of ``proc``, SIGKILL it after ``grace``; say what was done."""
    pgid = proc.pid  # start_new_session: the leader's pid is the group id
    how = host.end_group(pgid, grace)
    if how is None:
        return f"its process group {pgid} had already ended"
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    return f"its process group {pgid} was ended ({how})"


def end_all() -> list[str]:
    """End every process activity still running (the end of an item: nothing outlives the test)."""
    with _lock:
        left = list(_running.values())
        _running.clear()
    return [end_group(proc) for proc in left if proc.poll() is None]


_original: Any = None


def install() -> None:
    """Make chaoslib run process activities through :func:`run_process_activity`."""
    global _original
    import chaoslib.activity  # type: ignore[import-untyped,unused-ignore]

    if _original is None:
        _original = chaoslib.activity.run_process_activity
    chaoslib.activity.run_process_activity = run_process_activity


def uninstall() -> None:
    global _original
    import chaoslib.activity  # type: ignore[import-untyped,unused-ignore]

    if _original is not None:
        chaoslib.activity.run_process_activity = _original
        _original = None
