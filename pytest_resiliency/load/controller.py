"""The old name of :mod:`pytest_resiliency.load.run`: ``Traffic`` is :class:`~pytest_resiliency.load.run.LoadRun`."""

from __future__ import annotations

from .run import LoadRun, Traffic

__all__ = ["LoadRun", "Traffic"]
