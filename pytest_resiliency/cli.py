"""The ``pytest-resiliency`` command."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("pytest-resiliency: no commands yet", file=sys.stderr)
    return 2
