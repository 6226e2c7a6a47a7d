"""The one error family: every error the plugin raises on purpose is a :class:`ResiliencyError`.

Users catch the few kinds below; modules raise them (or a subclass naming their area) with a
message that says what was wrong and what is accepted. The kinds keep a builtin base as well
(``ValueError`` for bad input, ``RuntimeError`` for a failed action) so code written against
the builtins keeps working.
"""

from __future__ import annotations


class ResiliencyError(Exception):
    """Base of every error pytest-resiliency raises on purpose."""


class ConfigError(ResiliencyError, ValueError):
    """Bad input: a marker value, an option, an argument, a file. Reported as a usage error."""


class FaultError(ResiliencyError, RuntimeError):
    """A fault could not be injected or reverted, or it would overlap another on the same target."""


class TargetError(ResiliencyError, RuntimeError):
    """A target (a supervised service, a datastore, an AWS resource) could not be provisioned or found."""


class LoadError(ResiliencyError, RuntimeError):
    """The load generator could not start, or stopped producing evidence."""


__all__ = ["ConfigError", "FaultError", "LoadError", "ResiliencyError", "TargetError"]
