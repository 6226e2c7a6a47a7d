"""Providers the corpus' experiments call, written for this corpus (not copied from any repository).

They stand in for the helper modules of the experiments' own test suites (chaoslib's
``fixtures.fakeext``, ``fixtures.longpythonfunc``), for the tutorial's ``my.package`` and
for the ``mymodule.checkstuff`` of the chaostoolkit-addons safeguard documentation.
"""

from __future__ import annotations

import os
import time
from typing import Any


def force_failed_activity() -> None:
    from chaoslib.exceptions import ActivityFailed

    raise ActivityFailed("forced failure")


def echo_message(message: str) -> str:
    return message


def be_long(howlong: float) -> None:
    time.sleep(howlong)


def checkstuff(path: str) -> bool:
    """The safeguard's health check: healthy while ``path`` does not exist."""
    return not os.path.exists(path)


def search_text(value: Any = None, path: str = "", search_for: str = "") -> bool:
    """A probe tolerance: ``search_for`` is in the file at ``path``."""
    with open(path, encoding="utf-8") as text:
        return search_for in text.read()


def path_exists(path: str, value: Any = None) -> bool:
    """``os.path.exists`` as a probe tolerance: chaoslib passes the probe's output as ``value``,
    which ``os.path.exists`` refuses (chaoslib's own fixture uses it, and fails under ``chaos run``)."""
    return os.path.exists(path)
