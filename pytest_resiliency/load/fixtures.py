"""The ``load`` fixture: locust traffic against the system under test, as evidence.

Imports nothing heavy: the controller runs locust as a subprocess and is itself
imported only when a test asks for ``load``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..experiment import Experiment
    from .controller import Traffic
    from .writer import Writer


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("resiliency")
    group.addoption(
        "--resiliency-load-start-timeout",
        metavar="DURATION",
        default=None,
        help="how long locust may take to load its locustfiles, and workers to join, before the test errors "
        "(default 60s)",
    )
    group.addoption(
        "--resiliency-load-max-clock-skew",
        metavar="DURATION",
        default=None,
        help="refuse a load worker whose clock differs from this host's by more than this (default 1s)",
    )


START_TIMEOUT = pytest.StashKey[float]()
MAX_CLOCK_SKEW = pytest.StashKey[float]()
DEFAULT_START_TIMEOUT = 60.0
DEFAULT_MAX_CLOCK_SKEW = 1.0


def pytest_configure(config: pytest.Config) -> None:
    """Check the option at start-up: a bad value is a usage error, not a test error."""
    for option, key, default in (
        ("resiliency_load_start_timeout", START_TIMEOUT, DEFAULT_START_TIMEOUT),
        ("resiliency_load_max_clock_skew", MAX_CLOCK_SKEW, DEFAULT_MAX_CLOCK_SKEW),
    ):
        value = config.getoption(option, None)
        seconds = default
        name = "--" + option.replace("_", "-")
        if value is not None:
            from ..budget import BudgetError, parse_duration  # only when set: start-up stays light

            try:
                seconds = parse_duration(value, name)
            except BudgetError as exc:
                raise pytest.UsageError(str(exc)) from None
            if seconds <= 0:
                raise pytest.UsageError(f"{name}={value!r} must be > 0 (e.g. 10s, 500ms)")
        config.stash[key] = seconds


@pytest.fixture
def load(
    request: pytest.FixtureRequest, experiment: Experiment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Traffic]]:
    """Start locust against ``url``: ``traffic = load(url, users=10, rate=50, writes=0.3)``.

    ``locustfile=`` runs your own locustfile unchanged instead of the built-in scenario;
    ``workers=N`` runs a master and N local workers, ``remote_workers=`` waits for workers
    on other hosts (see docs/load.md). The load is stopped when the test ends, before the
    measurement; its request outcomes and writes are on the timeline.
    """
    from .controller import Traffic
    from .spec import LoadError, make_spec

    started: list[Traffic] = []
    timeout = request.config.stash.get(START_TIMEOUT, DEFAULT_START_TIMEOUT)
    max_skew = request.config.stash.get(MAX_CLOCK_SKEW, DEFAULT_MAX_CLOCK_SKEW)

    def start(url: Any, users: Any = 10, rate: Any = None, writes: Any = None, **options: Any) -> Traffic:
        options.setdefault("max_clock_skew", max_skew)
        client = options.pop("client", None)
        if client is not None:  # a store (redis, postgres, etcd) through locust users of sink/clients.py
            from .store_load import client_options

            url, options = client_options(client, url, users, rate, writes, options)
            rate = writes = None
        try:
            spec = make_spec(url, users, rate, writes, **options)
        except TypeError as exc:
            raise LoadError(f"load: {exc}") from None
        workdir = tmp_path_factory.mktemp("load")
        traffic = Traffic(spec, experiment, workdir, start_timeout=timeout)
        experiment.add_source(traffic)
        experiment.attach("locust" if not started else f"locust-{len(started) + 1}", traffic.report)
        started.append(traffic)
        return traffic.start()

    yield start
    died = []
    for traffic in started:
        traffic.stop()
        if traffic.died and not traffic.died_reported:
            died.append(traffic.died)
    if died:
        pytest.fail("load: " + "\n".join(died), pytrace=False)


@pytest.fixture
def writer(experiment: Experiment) -> Iterator[Callable[..., Writer]]:
    """Open-loop writes through any Python client: ``writes = writer(redis, rate=200, concurrency=4)``.

    ``redis`` is a ``put(key)`` callable or an object with ``put`` and ``classify`` (a datastore
    target, a store client). Stopped at the end of the test, before the measurement.
    """
    from .writer import Writer

    made: list[Writer] = []

    def start(target: Any, **options: Any) -> Writer:
        made.append(Writer(experiment, target, **options))
        experiment.add_source(made[-1])
        return made[-1].start()

    yield start
    for item in made:
        item.stop()
