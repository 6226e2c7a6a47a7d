"""Fixtures the experiment files ask for in their ``resiliency`` extension (``"fixtures": ["web_fleet"]``)."""

from __future__ import annotations

from resiliency_tests.aws.conftest import Fleet, web_fleet

__all__ = ["Fleet", "web_fleet"]
