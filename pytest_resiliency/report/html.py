"""pytest-html integration: resiliency columns, the timeline chart and the NFR table."""

from __future__ import annotations

import pytest


class HtmlReport:
    """Registered by the plugin only when pytest-html is active."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
