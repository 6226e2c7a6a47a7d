"""MkDocs hook: docstrings use Sphinx roles (:func:`x`); the API pages show them as plain code.

mkdocstrings renders the role's name as text before the code span (":func:<code>x</code>");
this drops it, so the reference reads as the docstring means.
"""

from __future__ import annotations

import re
from typing import Any

ROLE = re.compile(r":(?:py:)?(?:func|class|meth|attr|mod|data|exc|obj):(?=<code>)")


def on_page_content(html: str, **kwargs: Any) -> str:
    return ROLE.sub("", html)
