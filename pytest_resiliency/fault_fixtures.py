"""Fixtures and options of the faults: ``proxy``, ``netns``, the undo log's directory and
``pytest --resiliency-recover``, which undoes what a killed pytest left in the undo log
(SIGTERM while a fault is active is handled by :mod:`.faults.termination`).

Outside the :mod:`pytest_resiliency.faults` package on purpose: pytest imports this module at
start-up, and importing anything inside that package would run its ``__init__`` (the fault
machinery). Nothing beyond the standard library and pytest at module level; the faults load
inside the fixtures, when a test asks for them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .faults.netns import NetNamespace
    from .faults.toxics import Proxy

JOURNAL_ENV = "RESILIENCY_JOURNAL_DIR"  # faults.undo.ENV_DIR, not imported at start-up


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("resiliency")
    group.addoption(
        "--resiliency-recover",
        action="store_true",
        default=False,
        help="undo the faults left active by pytest runs that were killed (from the on-disk undo log), then exit",
    )
    group.addoption(
        "--resiliency-journal-dir",
        metavar="PATH",
        default=None,
        help=f"directory of the undo log of active faults and the target locks (default ${JOURNAL_ENV} "
        "or /tmp/pytest-resiliency-UID)",
    )


def _apply_journal_dir(config: pytest.Config) -> None:
    path = config.getoption("resiliency_journal_dir", None)
    if path:
        os.environ[JOURNAL_ENV] = str(Path(path).resolve())  # inherited by xdist workers and helpers


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if not config.getoption("resiliency_recover", False):
        return None
    from .faults import undo

    _apply_journal_dir(config)
    lines, status = undo.recover_report()
    print("\n".join(lines), flush=True)
    return status


def pytest_configure(config: pytest.Config) -> None:
    _apply_journal_dir(config)


@pytest.fixture
def proxy() -> Iterator[Callable[..., Proxy]]:
    """Factory: ``p = proxy(svc)`` puts a fault proxy in front of a service (or a port); use ``p.url``."""
    from .faults.toxics import Proxy

    made: list[Proxy] = []

    def start(upstream: Any, **options: Any) -> Proxy:
        made.append(Proxy(upstream, **options))
        return made[-1]

    try:
        yield start
    finally:
        for p in reversed(made):
            p.close()


@pytest.fixture
def netns() -> Iterator[NetNamespace]:
    """A fresh network namespace with loopback up; skipped (with the reason) without root or nftables."""
    from .faults.netns import NetNamespace

    why = NetNamespace.unavailable()
    if why:
        pytest.skip(f"netns: {why}")
    namespace = NetNamespace().create()
    try:
        yield namespace
    finally:
        namespace.delete()
