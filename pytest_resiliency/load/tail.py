"""Following the sink's events file into the ingest, on a thread, until the load is drained."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

POLL = 0.01  # seconds between reads of an idle file: well under the sink's 50 ms batches
CHUNK = 1 << 20


class EventsTail:
    """Feeds every byte appended to ``path`` to ``feed`` until ``drained`` is set (the writers are reaped).

    Between reads of an idle file it calls ``idle()``; when that returns True the writers
    ended on their own: what is left is read and the tail stops. ``done()`` runs last, on
    the tail's thread.
    """

    def __init__(
        self,
        path: Path,
        feed: Callable[[bytes], object],
        idle: Callable[[], bool],
        done: Callable[[], None],
    ) -> None:
        self.path = path
        self.feed = feed
        self.idle = idle
        self.done = done
        self.drained = threading.Event()
        self._thread = threading.Thread(target=self._run, name="resiliency-load-tail", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def finish(self, timeout: float = 30.0) -> None:
        """The writers are gone: read to the end of the file, then stop."""
        self.drained.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            with self.path.open("rb") as f:
                while True:
                    chunk = f.read(CHUNK)
                    if chunk:
                        self.feed(chunk)
                        continue
                    if self.drained.is_set():
                        break
                    if self.idle():
                        rest = f.read()
                        if rest:
                            self.feed(rest)
                        break
                    self.drained.wait(POLL)  # a file append has no event to await: poll, but wake on finish()
        finally:
            self.done()
