"""pytest-resiliency's built-in HTTP read/write scenario (see pytest_resiliency.load.scenarios)."""

from pytest_resiliency.load.scenarios import ResiliencyHttpUser

__all__ = ["ResiliencyHttpUser"]
