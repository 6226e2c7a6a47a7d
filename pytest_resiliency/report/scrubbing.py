"""Secrets in what pytest prints before there is a report: node ids and warnings.

A parametrize id (``test_login[https://bob:PW@host]``) or an experiment title becomes the node
id that the terminal prints as the test starts, that ``--collect-only`` lists and that every
report repeats; a warning raised by the test is printed in the warnings summary, which reads
no report. So the node id of each of the plugin's tests is scrubbed at collection, before
anything prints it, and its warnings as they are recorded (in the xdist worker, before they
travel). Other tests are left as pytest made them unless ``resiliency_scrub_all_reports``.

The hooks are :class:`~pytest_resiliency.report.options.ReportScrubbing` (registered at
start-up in every process); this module loads only when a test of ours or a warning needs it.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest


def rename(item: pytest.Item, known: list[str]) -> None:
    """Scrub ``item``'s node id and name where they hold a secret (a parametrize id, a title)."""
    from .secrets import scrub_text

    clean = scrub_text(item.nodeid, known)
    if clean == item.nodeid:
        return
    # pytest has no public way to rename an item; its id is ``_nodeid`` (the test function itself is
    # found by ``originalname``, so renaming does not change what runs).
    item._nodeid = clean
    item.name = scrub_text(item.name, known)
    item.__dict__.pop("location", None)  # a cached property built from the name


def scrub_warning(warning_message: warnings.WarningMessage) -> None:
    """Scrub a recorded warning's message in place (its arguments, so xdist carries the clean text),
    and the source line the summary shows under it."""
    import linecache

    from .secrets import scrub_text

    line = warning_message.line
    if line is None:
        line = linecache.getline(warning_message.filename, warning_message.lineno).strip()
    clean_line = scrub_text(line)
    if clean_line != line:
        warning_message.line = clean_line
    message: Any = warning_message.message
    text = str(message)
    clean = scrub_text(text)
    if clean == text:
        return
    if isinstance(message, Warning):
        message.args = tuple(scrub_text(a) if isinstance(a, str) else a for a in message.args)
        if str(message) == clean:
            return
    warning_message.message = clean  # a str message is what warnings.warn("...") keeps too
