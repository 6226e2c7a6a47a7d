"""Load generation with locust, always out of process (locust is never imported here).

``from pytest_resiliency.load import LoadFactory, LoadRun`` types a test's ``load`` fixture and
what it returns. Names resolve on first use, so this package stays free to import (locust
imports it when it loads the sink locustfile).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import LoadConfigError, LoadError, StoreError, WriterError
    from .fixtures import LoadFactory, WriterFactory
    from .run import LoadRun, Traffic
    from .spec import LoadSpec
    from .writer import Writer

_LAZY = {
    "LoadConfigError": ".errors",
    "LoadError": ".errors",
    "StoreError": ".errors",
    "WriterError": ".errors",
    "LoadFactory": ".fixtures",
    "WriterFactory": ".fixtures",
    "LoadRun": ".run",
    "Traffic": ".run",
    "LoadSpec": ".spec",
    "Writer": ".writer",
}

__all__ = [
    "LoadConfigError",
    "LoadError",
    "LoadFactory",
    "LoadRun",
    "LoadSpec",
    "StoreError",
    "Traffic",
    "Writer",
    "WriterError",
    "WriterFactory",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'pytest_resiliency.load' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value
