"""Pure-Python stressors, the fallback when stress-ng is not installed (no root, no apt needed).

Run as ``python -I -S stressor.py SPEC_JSON`` in its own session. Every stressor ends by
itself at ``deadline`` (wall clock), exactly like ``stress-ng --timeout``, so a SIGKILLed
pytest never leaves one running for longer than the fault's maximum duration.
Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import signal
import sys
import time
from typing import Any

PERIOD = 0.1  # duty-cycle period of the CPU stressor
PAGE = mmap.PAGESIZE


def cpu(load_percent: float, deadline: float) -> None:
    """Busy for ``load_percent`` of every 100 ms, asleep for the rest, until the deadline."""
    busy = PERIOD * load_percent / 100.0
    while True:
        start = time.monotonic()
        if time.time() >= deadline:
            return
        x = 0
        while time.monotonic() - start < busy:
            x += 1
        rest = PERIOD - (time.monotonic() - start)
        if rest > 0:
            time.sleep(rest)


def memory(size: int, deadline: float) -> None:
    """Allocate ``size`` bytes, touch every page so they are resident, hold them until the deadline."""
    block = bytearray(size)
    for offset in range(0, size, PAGE):
        block[offset] = 1
    while time.time() < deadline:
        time.sleep(min(0.5, max(0.0, deadline - time.time())))
        for offset in range(0, size, PAGE * 64):  # keep them resident and dirty
            block[offset] = (block[offset] + 1) & 0xFF


def io(directory: str, size: int, deadline: float) -> None:
    """Write and fsync ``size`` bytes to a file in ``directory`` over and over, until the deadline."""
    path = os.path.join(directory, f"io-{os.getpid()}")
    chunk = os.urandom(1 << 20)
    try:
        while time.time() < deadline:
            with open(path, "wb") as handle:
                written = 0
                while written < size and time.time() < deadline:
                    handle.write(chunk[: min(len(chunk), size - written)])
                    written += len(chunk)
                    handle.flush()
                    os.fsync(handle.fileno())
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def main(argv: list[str]) -> int:
    spec: dict[str, Any] = json.loads(argv[0])
    deadline = float(spec["deadline"])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # unwind so the io file is removed
    workers = int(spec.get("workers", 1))
    children: list[int] = []
    for _ in range(workers - 1):
        pid = os.fork()
        if pid == 0:
            children = []
            break
        children.append(pid)
    try:
        if spec["kind"] == "cpu":
            cpu(float(spec["load_percent"]), deadline)
        elif spec["kind"] == "memory":
            memory(int(spec["bytes"]), deadline)
        elif spec["kind"] == "io":
            io(str(spec["path"]), int(spec["bytes"]), deadline)
    finally:
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
