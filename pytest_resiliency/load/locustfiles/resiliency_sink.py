"""pytest-resiliency's sink: ships every request and ledger write to the pytest timeline."""

from pytest_resiliency.load.sink import register

register()
