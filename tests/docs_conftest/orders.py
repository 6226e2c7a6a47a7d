"""conftest.py for documentation examples that use an ``orders`` fixture (``conftest=orders``).

The service under test is the demo orders API of the example suite (``resiliency_tests/demo``):
``POST /orders`` acknowledges durable writes, ``GET /orders/<key>`` reads them back, which
is what the built-in load scenario speaks.
"""

from pathlib import Path

import pytest

from pytest_resiliency import Service, ServiceFactory
from resiliency_tests.demo.harness import command


@pytest.fixture
def orders(service: ServiceFactory, tmp_path: Path) -> Service:
    argv = command("orders", "--port", "{port}", "--durability", "fsync", "--data-dir", str(tmp_path / "data"))
    return service(argv, name="orders", health="http://127.0.0.1:{port}/health", restart_delay="200ms")
