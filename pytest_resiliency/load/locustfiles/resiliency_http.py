"""pytest-resiliency's built-in HTTP read/write scenario (see pytest_resiliency.load.sink.scenarios)."""

from pytest_resiliency.load.sink.scenarios import ResiliencyHttpUser

__all__ = ["ResiliencyHttpUser"]
