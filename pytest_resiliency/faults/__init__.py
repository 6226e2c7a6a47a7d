"""Fault-injection context managers. Each injects on enter and reverts on exit, always.

``faults.custom`` lives in :mod:`.base`; the fault library is spread over submodules
(``local``, ``network``, ``aws``) that are imported on first use, so ``import
pytest_resiliency`` never pulls in boto3. Each submodule lists its faults in ``__all__``.
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import CustomFault, Fault, FaultError, custom

__all__ = ["CustomFault", "Fault", "FaultError", "custom"]

_SUBMODULES = ("local", "network", "aws")


def __getattr__(name: str) -> Any:
    if name.startswith("_"):
        raise AttributeError(name)
    for sub in _SUBMODULES:
        try:
            module = importlib.import_module(f"{__name__}.{sub}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{sub}":
                continue
            raise
        if name in getattr(module, "__all__", ()):
            return getattr(module, name)
    raise AttributeError(f"pytest_resiliency.faults has no fault {name!r}")
