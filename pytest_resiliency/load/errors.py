"""The load's errors: kinds of :mod:`pytest_resiliency.errors`, under the names users already catch.

A bad argument of ``load()``, ``writer()`` or a store client is a :class:`~pytest_resiliency.errors.ConfigError`
(a usage error) *and* still the ``LoadError`` / ``WriterError`` / ``StoreError`` it always was.
"""

from __future__ import annotations

from ..errors import ConfigError, LoadError


class LoadConfigError(ConfigError, LoadError):
    """A bad argument of ``load()``: named, with what is accepted, before any process starts."""


class WriterError(LoadError, ValueError):
    """The open-loop writer's errors: a bad argument, or writes that never became steady."""


class WriterConfigError(ConfigError, WriterError):
    """A bad argument of ``writer()``."""


class StoreError(ConfigError):
    """A store URL or client option is wrong, or its client library is missing; the message says what."""


__all__ = ["LoadConfigError", "LoadError", "StoreError", "WriterConfigError", "WriterError"]
