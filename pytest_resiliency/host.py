"""The local host: a free TCP port, the tail of a log file, ending a process group.

Shared by the targets (supervised services), the load (locust processes), the SSM runner and
the Chaos Toolkit process activities, which must not import each other for it. Standard
library at module level (psutil and tenacity load when a process group is ended).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket

TAIL_BYTES = 64 * 1024  # enough for any tail of a few dozen lines; a huge log is never read whole


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the kernel picks it); ``"*"`` or ``""`` means every address."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host if host not in ("*", "") else "0.0.0.0", 0))
        return int(sock.getsockname()[1])


def tail_text(path: str | os.PathLike[str], lines: int) -> str:
    """The last ``lines`` lines of a text file (undecodable bytes replaced); ``""`` when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - TAIL_BYTES))
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def group_alive(pgid: int) -> bool:
    """Whether a live process of the group is left (zombies do not count: PID 1 may never reap them here)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process is in it: look closer
    from . import procfs

    return procfs.group_alive(pgid)


def end_group(pgid: int, grace: float) -> str | None:
    """SIGTERM the process group ``pgid``, SIGKILL what is left after ``grace`` seconds.

    The group is signalled even when its leader is gone (its children may live on). Returns
    how it ended, or ``None`` when the group had already ended.
    """
    from .waiting import until

    if not group_alive(pgid):  # zombies left in it count as gone (PID 1 may never reap them)
        return None
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return None
    if until(lambda: not group_alive(pgid), grace, 0.02):  # a process group has no exit event
        return "SIGTERM"
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    return f"SIGKILL after SIGTERM was ignored for {grace:g}s"


__all__ = ["end_group", "free_port", "group_alive", "tail_text"]
