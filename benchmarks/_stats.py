"""Small helpers shared by the benchmark scripts: medians with min and max."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def mmm(values: Sequence[float], scale: float = 1.0, unit: str = "") -> str:
    """``median [min .. max]`` of ``values`` times ``scale``."""
    if not values:
        return "n/a"
    scaled = [v * scale for v in values]
    return f"{statistics.median(scaled):+.1f}{unit} [{min(scaled):+.1f} .. {max(scaled):+.1f}]"
