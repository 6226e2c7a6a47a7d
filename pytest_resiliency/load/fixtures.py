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


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("resiliency")
    group.addoption(
        "--resiliency-load-start-timeout",
        metavar="DURATION",
        default=None,
        help="how long locust may take to load its locustfiles before the test errors (default 60s)",
    )


START_TIMEOUT = pytest.StashKey[float]()
DEFAULT_START_TIMEOUT = 60.0


def pytest_configure(config: pytest.Config) -> None:
    """Check the option at start-up: a bad value is a usage error, not a test error."""
    value = config.getoption("resiliency_load_start_timeout", None)
    seconds = DEFAULT_START_TIMEOUT
    if value is not None:
        from ..budget import BudgetError, parse_duration  # only when set: start-up stays light

        try:
            seconds = parse_duration(value, "--resiliency-load-start-timeout")
        except BudgetError as exc:
            raise pytest.UsageError(str(exc)) from None
        if seconds <= 0:
            raise pytest.UsageError(f"--resiliency-load-start-timeout={value!r} must be > 0")
    config.stash[START_TIMEOUT] = seconds


@pytest.fixture
def load(
    request: pytest.FixtureRequest, experiment: Experiment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Traffic]]:
    """Start locust against ``url``: ``traffic = load(url, users=10, rate=50, writes=0.3)``.

    ``locustfile=`` runs your own locustfile unchanged instead of the built-in scenario;
    ``workers=N`` runs a master and N local workers. The load is stopped when the test
    ends, before the measurement; its request outcomes and writes are on the timeline.
    """
    from .controller import Traffic
    from .spec import LoadError, make_spec

    started: list[Traffic] = []
    timeout = request.config.stash.get(START_TIMEOUT, DEFAULT_START_TIMEOUT)

    def start(url: Any, users: Any = 10, rate: Any = None, writes: Any = None, **options: Any) -> Traffic:
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
