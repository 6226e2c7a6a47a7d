"""The locust zygote: imports locust once, then forks a ready interpreter for every locust process.

Run as ``python -m pytest_resiliency.load.zygote`` by :mod:`.processes` (never imported by
pytest: importing locust monkey-patches the interpreter with gevent). Starting a locust
process costs ~0.65 s of imports; a fork of this process costs a few milliseconds.

Protocol, one line each way. Requests on stdin: ``{"argv": [...], "env": {...}, "cwd": ...,
"log": ..., "cpus": [...]}``. Answers on stdout: ``ready`` once locust is imported, then ``spawned PID`` or
``failed REASON`` per request, in order, and ``exited PID CODE`` (``CODE`` as
:attr:`subprocess.Popen.returncode`: negative for a signal) when a child ends. The zygote
exits when its stdin closes; its children do not (they watch pytest themselves).

Single-threaded: the loop waits with the *original* ``select`` on stdin and a self-pipe
that the SIGCHLD handler's wakeup fd writes to, and reaps with the original ``waitpid``,
because gevent patches ``os.fork``, ``os.waitpid``, ``select`` and ``signal`` for its hub.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import traceback
from typing import Any, NoReturn

RESCAN = 1.0  # seconds: a safety net under the SIGCHLD wakeup


def _write(line: str) -> None:
    data = (line + "\n").encode()
    while data:
        data = data[os.write(1, data) :]


def _child(request: dict[str, Any], fds: tuple[int, ...], set_handler: Any) -> NoReturn:
    """In the forked child: become the process ``python -m locust ARGV`` would have been.

    Never returns: locust's ``main()`` ends in ``sys.exit(code)``, and that SystemExit (or any
    exception) propagates out of the zygote's loop, so the interpreter exits the way a fresh
    ``python -m locust`` does: exit code, traceback, atexit, flushed stdio and sockets (a
    worker's last ZeroMQ messages to its master are sent at interpreter exit; ``os._exit``
    would drop them).
    """
    try:
        os.setsid()  # its own session, like start_new_session=True: stop() kills its group
        signal.set_wakeup_fd(-1)
        set_handler(signal.SIGCHLD, signal.SIG_DFL)
        for fd in fds:
            os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        cwd = request["cwd"]
        os.chdir(cwd)
        if request.get("cpus"):
            os.sched_setaffinity(0, request["cpus"])
        env: dict[str, str] = request["env"]
        os.environ.clear()
        os.environ.update(env)
        # PYTHONPATH is read at interpreter start only: put the request's first, as `-m` would.
        first = [cwd, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        sys.path[:] = list(dict.fromkeys([*first, *sys.path]))  # the zygote ran with -P: no cwd of its own
        import gevent

        gevent.reinit()
        # The hub's loop caches "now" and the zygote has not run it since it started: every timer
        # locust arms (its --run-time limit) would be due at once in a zygote older than its delay.
        gevent.get_hub().loop.update_now()
        sys.argv = list(request["argv"])
    except BaseException:  # not set up: never run the zygote's loop on in the child
        with contextlib.suppress(BaseException):
            traceback.print_exc()
            sys.stderr.flush()
        os._exit(1)
    import locust.main

    try:
        locust.main.main()  # type: ignore[no-untyped-call]
    except SystemExit:
        raise
    except BaseException:
        # Printed from here down, as a fresh interpreter prints it from locust's __main__ down: the
        # zygote's own frames would push the start of the traceback out of the log tail of an error.
        traceback.print_exc()
        raise SystemExit(1) from None
    raise SystemExit(0)


def serve() -> NoReturn:
    import locust.main  # noqa: F401 - the point: import (and monkey-patch) once, before any fork
    from gevent import monkey

    fork = monkey.get_original("os", "fork")
    waitpid = monkey.get_original("os", "waitpid")
    select = monkey.get_original("select", "select")
    set_handler = monkey.get_original("signal", "signal")

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    set_handler(signal.SIGCHLD, lambda signum, frame: None)  # a Python handler, so the wakeup fd is written
    children: set[int] = set()
    buffer = b""
    _write("ready")

    def reap() -> None:
        for pid in list(children):
            try:
                done, status = waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                children.discard(pid)
                continue
            if done:
                children.discard(pid)
                _write(f"exited {pid} {os.waitstatus_to_exitcode(status)}")

    while True:
        readable, _, _ = select([0, wake_r], [], [], RESCAN)
        if wake_r in readable:
            try:
                while os.read(wake_r, 512):
                    pass
            except BlockingIOError:
                pass
        reap()
        if 0 not in readable:
            continue
        chunk = os.read(0, 65536)
        if not chunk:  # pytest is gone or done; the children watch pytest themselves
            # At once: nothing is buffered (answers are raw writes), and tearing down an interpreter
            # that holds locust and gevent takes ~0.15 s that pytest would wait for at its exit.
            os._exit(0)
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            try:
                request = json.loads(line)
                pid = fork()
            except Exception as exc:  # a bad request or no fork: pytest falls back to a subprocess
                _write(f"failed {type(exc).__name__}: {exc}".replace("\n", " "))
                continue
            if pid == 0:
                _child(request, (wake_r, wake_w), set_handler)
            children.add(pid)
            _write(f"spawned {pid}")


if __name__ == "__main__":
    serve()
