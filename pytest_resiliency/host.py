"""The local host: a free TCP port, the tail of a log file.

Shared by the targets (supervised services) and the load (locust processes), which must not
import each other for it. Standard library only.
"""

from __future__ import annotations

import os
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


__all__ = ["free_port", "tail_text"]
