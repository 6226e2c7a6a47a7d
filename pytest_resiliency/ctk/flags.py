"""The ``--resiliency-ctk-*`` options and their ini twins: registration only.

Loaded at pytest start-up; the parsing and checking of the values (``options.py``, with
the experiment parser behind it) load only when an option is given or an experiment runs.
"""

from __future__ import annotations

import pytest

from .strategies import HYPOTHESIS_STRATEGIES, ROLLBACK_STRATEGIES

OPTIONS = (
    "resiliency_ctk_hypothesis_strategy",
    "resiliency_ctk_hypothesis_frequency",
    "resiliency_ctk_fail_fast",
    "resiliency_ctk_fail_fast_ratio",
    "resiliency_ctk_rollback_strategy",
    "resiliency_ctk_var",
    "resiliency_ctk_var_file",
    "resiliency_ctk_control_file",
)
INI = ("resiliency_ctk_control_files", "resiliency_ctk_vars", "resiliency_ctk_var_files")


def addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("resiliency")
    group.addoption(
        "--resiliency-ctk-hypothesis-strategy",
        metavar="STRATEGY",
        default=None,
        help="Chaos Toolkit experiments: when the steady-state hypothesis is checked, overriding each "
        f"experiment's runtime.hypothesis.strategy (one of {', '.join(HYPOTHESIS_STRATEGIES)})",
    )
    group.addoption(
        "--resiliency-ctk-hypothesis-frequency",
        metavar="DURATION",
        default=None,
        help="Chaos Toolkit experiments: time between two during-method hypothesis checks (default 1s)",
    )
    group.addoption(
        "--resiliency-ctk-fail-fast",
        action="store_true",
        default=None,
        help="Chaos Toolkit experiments: stop the method and fail when a during-method check deviates",
    )
    group.addoption(
        "--resiliency-ctk-fail-fast-ratio",
        metavar="PERCENT",
        default=None,
        help="Chaos Toolkit experiments: with fail-fast, stop once PERCENT of the during-method checks "
        "deviated (default 0: the first deviation)",
    )
    group.addoption(
        "--resiliency-ctk-rollback-strategy",
        metavar="STRATEGY",
        default=None,
        help="Chaos Toolkit experiments: when rollbacks run, overriding runtime.rollbacks.strategy "
        f"(one of {', '.join(ROLLBACK_STRATEGIES)}; default: always once the method started)",
    )
    group.addoption(
        "--resiliency-ctk-var",
        metavar="NAME[:TYPE]=VALUE",
        action="append",
        default=[],
        help="Chaos Toolkit experiments: a configuration value, as chaos run --var (types: int, float, "
        "bytes, bool, json, str)",
    )
    group.addoption(
        "--resiliency-ctk-var-file",
        metavar="PATH",
        action="append",
        default=[],
        help="Chaos Toolkit experiments: a JSON/YAML file with 'configuration' and 'secrets' values, "
        "or a .env file of environment variables, as chaos run --var-file",
    )
    group.addoption(
        "--resiliency-ctk-control-file",
        metavar="PATH",
        action="append",
        default=[],
        help="Chaos Toolkit experiments: a JSON/YAML file of controls applied to every experiment "
        "(global controls, loader hooks included), as chaos run --control-file",
    )
    parser.addini("resiliency_ctk_control_files", "control files, as --resiliency-ctk-control-file", type="linelist")
    parser.addini(
        "resiliency_ctk_vars", "NAME[:TYPE]=VALUE configuration values (--resiliency-ctk-var wins)", type="linelist"
    )
    parser.addini(
        "resiliency_ctk_var_files", "var files, as --resiliency-ctk-var-file (read before it)", type="linelist"
    )


def given(config: pytest.Config) -> bool:
    """Whether any of these options or ini values was set (only then are they checked at start-up)."""
    return any(config.getoption(name) for name in OPTIONS) or any(config.getini(name) for name in INI)
