"""Probes for local targets: is the process there and running (not stopped, not a zombie)?"""

from __future__ import annotations

from typing import Any

from ..probes.base import Probe, ProbeFailed
from .process import ProcessTarget, TargetError, status

__all__ = ["process"]


def process(target: Any, *, name: str | None = None) -> Probe:
    """Passes when the service / pid / named process exists and is not stopped (SIGSTOP) or a zombie.

    A paused worker still "exists": this probe fails for it, which is what a liveness check
    that expects answers would see.
    """
    try:
        resolved = ProcessTarget(target)
    except TargetError as exc:
        raise ValueError(f"probes.process: {exc}") from None

    def check() -> None:
        try:
            procs = resolved.resolve()
        except TargetError as exc:
            raise ProbeFailed(str(exc)) from None
        states = {p.pid: status(p.pid) for p in procs}
        bad = {pid: state for pid, state in states.items() if state in (None, "T", "t", "Z", "X")}
        if bad and len(bad) == len(states):
            words = {None: "gone", "T": "stopped", "t": "stopped (traced)", "Z": "zombie", "X": "dead"}
            raise ProbeFailed(", ".join(f"pid {pid} {words.get(state, state)}" for pid, state in bad.items()))

    return Probe(name or f"process {resolved.label}", check)
