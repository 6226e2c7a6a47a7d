"""SIGTERM while a fault is active: revert every fault, then end exactly as SIGTERM would have.

Why only while a fault is active: pytest has no SIGTERM handler, so SIGTERM kills it (exit
status 143, ``-15`` to a parent) and pytest-xdist replaces a worker killed that way. A
handler installed for the whole run would change that for every suite, ours or not. So the
handler is installed when the first fault starts acting and removed when the last one is
reverted, and only when SIGTERM still has its default disposition (a handler of your own, or
``SIG_IGN``, is left alone: you already decided what SIGTERM means).

What it does: it puts SIGTERM back to its default (so a second SIGTERM ends the process at
once) and raises :class:`Terminated`, a ``KeyboardInterrupt``, in the main thread, so every
``with fault:`` block, the experiment fixture and the Chaos Toolkit rollbacks revert on the
way out. When the last active fault is released the process sends itself SIGTERM again and
dies of it, as it would have without the plugin: same exit status, same xdist crash handling.
A SIGTERM that arrives while the main thread is injecting or reverting waits for that step to
finish, so no fault is left half-applied; one that arrives while a ``KeyboardInterrupt`` is
already unwinding the faults lets it finish instead of interrupting the reverts.

Under pytest-xdist the faults act in the workers, but Ctrl-C or SIGTERM usually reaches only
the controller (``kill``, a CI runner's cancel). xdist then shuts the workers down through
execnet, which lets the running test go on for 5 s before interrupting it: a paused service
stayed stopped that long. So, only while a fault is active:

* the controller, on ``KeyboardInterrupt`` (a hook, no signal handler: see
  :mod:`pytest_resiliency.interrupt`), sends SIGTERM to its workers that own an active fault
  in the on-disk journal, and their faults unwind as above;
* a worker watches its parent (:func:`_watch_parent`): when the controller dies (SIGTERM's
  default action, or SIGKILL) the worker sends itself SIGTERM at once.

Standard library only; imported by :mod:`.base`, never at pytest start-up.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

MESSAGE = "SIGTERM received: reverting the active faults, then exiting as SIGTERM would"

_lock = threading.RLock()  # re-entrant: the handler may run while the main thread holds it
_active: dict[int, Any] = {}  # id(fault) -> fault, in start order
_installed = False
_pending = False  # SIGTERM received: unwinding towards the last revert
_deferred = False  # SIGTERM arrived during an inject/revert of the main thread
_busy = 0  # depth of inject/revert steps running in the main thread
_watch_stop: threading.Event | None = None  # set to end the parent watch of an xdist worker
PARENT_POLL = 0.05  # seconds between two looks at the parent pid (a worker's reaction time)


class Terminated(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM while faults are active, so they revert on the way out."""


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def installed() -> bool:
    """Whether the handler is in place now (for tests and the curious)."""
    return _installed and signal.getsignal(signal.SIGTERM) is _on_sigterm


def active_count() -> int:
    return len(_active)


def fault_started(fault: Any) -> None:
    """A fault is about to act: from now on SIGTERM reverts it first."""
    with _lock:
        _active[id(fault)] = fault
        if not _installed and not _pending:
            _install()


def fault_ended(fault: Any) -> None:
    """A fault is reverted (or failed to inject): when it was the last one, hand SIGTERM back."""
    with _lock:
        if _active.pop(id(fault), None) is None or _active:
            return
        if _pending:
            _die()
        _uninstall()


def settle() -> None:
    """Hand SIGTERM back if the last fault ended in another thread (a watchdog): main thread only."""
    with _lock:
        if not _active and not _pending:
            _uninstall()


def _install() -> None:
    global _installed
    if not _main_thread():  # only the main thread may set handlers; a later main-thread fault will
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return  # someone (you, another plugin) owns SIGTERM: leave it alone
    signal.signal(signal.SIGTERM, _on_sigterm)
    _installed = True
    if os.environ.get("PYTEST_XDIST_WORKER"):
        _start_parent_watch()


def _uninstall() -> None:
    """Put the default back (main thread only; elsewhere the idle handler behaves as the default)."""
    global _installed
    _stop_parent_watch()
    if not _installed or not _main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is _on_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _installed = False


def _start_parent_watch() -> None:
    global _watch_stop
    if _watch_stop is not None:
        return
    stop = _watch_stop = threading.Event()
    thread = threading.Thread(
        target=_watch_parent, args=(os.getppid(), stop), name="resiliency-parent-watch", daemon=True
    )
    thread.start()


def _stop_parent_watch() -> None:
    global _watch_stop
    stop, _watch_stop = _watch_stop, None
    if stop is not None:
        stop.set()


def _watch_parent(parent: int, stop: threading.Event) -> None:
    """An xdist worker with active faults: when the controller dies, revert now, not in 5 s.

    A dead parent is seen as a new parent pid (the process is re-parented). execnet would notice
    the closed channel too, but waits 5 s for the running test before interrupting it.
    """
    while not stop.wait(PARENT_POLL):
        if os.getppid() != parent:
            # Only while our handler is in place: once a SIGTERM is being handled, the default is
            # back and another one would end the process in the middle of its reverts.
            if not stop.is_set() and signal.getsignal(signal.SIGTERM) is _on_sigterm:
                os.kill(os.getpid(), signal.SIGTERM)  # handled in the main thread: the faults unwind
            return


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    global _installed, _pending, _deferred
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    _installed = False
    _stop_parent_watch()  # its job is done; it must not send the second SIGTERM
    if not _active:  # the last fault was reverted by another thread meanwhile: default action
        _die()
    if not _pending:
        _pending = True
        atexit.register(_at_exit)
    if _busy:
        _deferred = True  # raised when the running inject/revert step is complete
        return
    if isinstance(sys.exc_info()[1], KeyboardInterrupt):
        return  # Ctrl-C (or an earlier SIGTERM) is already unwinding the faults: let it finish
    raise Terminated(MESSAGE)


@contextlib.contextmanager
def step(on_deferred: Callable[[], None] | None = None) -> Iterator[None]:
    """Wrap an inject or revert: a SIGTERM that arrives meanwhile is acted on when it is complete.

    ``on_deferred`` runs first in that case (an inject passes its own revert), then
    :class:`Terminated` is raised to unwind the faults that are still active.
    """
    global _busy, _deferred
    if not _main_thread():
        yield
        return
    _busy += 1
    try:
        yield
    finally:
        _busy -= 1
        if _deferred and not _busy:
            _deferred = False
            if on_deferred is not None:
                on_deferred()  # may be the last revert: then the process ends inside it
            raise Terminated(MESSAGE)


def _at_exit() -> None:
    """Something swallowed :class:`Terminated` and the run ended with faults still active."""
    for fault in reversed(list(_active.values())):
        with contextlib.suppress(Exception):
            fault.revert()
    _die()


def _die() -> None:
    """End the process by SIGTERM's default action (exit status 143), as without the plugin."""
    with contextlib.suppress(ValueError):  # not the main thread: the handler already restored it
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)  # the signal is delivered on return to user space; this is never reached in practice
    os._exit(128 + signal.SIGTERM)
