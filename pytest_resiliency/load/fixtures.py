"""The ``load`` and ``writer`` fixtures: traffic against the system under test, as evidence.

Imports nothing heavy: :mod:`.run` starts locust as a subprocess and is itself imported
only when a test asks for ``load``. The factories the fixtures return are typed
(:class:`LoadFactory`, :class:`WriterFactory`), so a misspelt keyword fails type checking
in the user's test: ``def test_x(load: LoadFactory): ...``.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

import pytest

if TYPE_CHECKING:
    from ..experiment import Experiment
    from .classifiers import Classifier
    from .run import LoadRun
    from .writer import Writer

PathLike = str | os.PathLike[str]


class LoadFactory(Protocol):
    """The ``load`` fixture: ``traffic = load(url, users=10, rate=50, writes=0.3)`` (see docs/load.md)."""

    def __call__(
        self,
        url: str,
        users: int = 10,
        rate: float | None = None,
        writes: float | None = None,
        locustfile: PathLike | Sequence[PathLike] | None = None,
        duration: float | str | None = None,
        workers: int = 0,
        *,
        client: Literal["redis", "postgres", "etcd"] | None = None,
        spawn_rate: float | None = None,
        remote_workers: int | Sequence[str] = 0,
        master_bind_host: str = "127.0.0.1",
        master_port: int | None = None,
        workers_timeout: float | str | None = None,
        missing_after: float | str = "3s",
        on_worker_loss: Literal["error", "continue"] = "error",
        max_clock_skew: float | str | None = None,
        request_timeout: float | str | None = None,
        write_path: str = "/orders",
        read_path: str = "/orders/{key}",
        locust_args: Sequence[str] = (),
    ) -> LoadRun: ...


class WriterFactory(Protocol):
    """The ``writer`` fixture: ``writes = writer(redis, rate=200, concurrency=4)``."""

    def __call__(
        self,
        target: Any,
        *,
        rate: float = 100.0,
        concurrency: int = 4,
        classify: str | Classifier | None = None,
        name: str | None = None,
        prefix: str | None = None,
        duration: float | str | None = None,
        max_backlog: int | None = None,
    ) -> Writer: ...


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
    group.addoption(
        "--resiliency-load-fork",
        choices=("on", "off"),
        default=None,
        help="on (default): fork locust processes from a process that imported locust once; off: start each "
        "as a fresh `python -m locust` (for locustfiles that need a fresh interpreter). "
        "Also RESILIENCY_LOAD_FORK=0",
    )


START_TIMEOUT = pytest.StashKey[float]()
MAX_CLOCK_SKEW = pytest.StashKey[float]()
DEFAULT_START_TIMEOUT = 60.0
DEFAULT_MAX_CLOCK_SKEW = 1.0


def pytest_configure(config: pytest.Config) -> None:
    """Check the option at start-up: a bad value is a usage error, not a test error."""
    fork = config.getoption("resiliency_load_fork", None)
    if fork is not None:
        from . import forkserver

        forkserver.configure(fork == "on")
    for option, key, default in (
        ("resiliency_load_start_timeout", START_TIMEOUT, DEFAULT_START_TIMEOUT),
        ("resiliency_load_max_clock_skew", MAX_CLOCK_SKEW, DEFAULT_MAX_CLOCK_SKEW),
    ):
        value = config.getoption(option, None)
        seconds = default
        name = "--" + option.replace("_", "-")
        if value is not None:
            from .. import validate
            from ..errors import ConfigError

            try:
                seconds = validate.duration(value, name, positive=True)
            except ConfigError as exc:
                raise pytest.UsageError(str(exc)) from None
        config.stash[key] = seconds


@pytest.fixture
def load(
    request: pytest.FixtureRequest, experiment: Experiment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoadFactory]:
    """Start locust against ``url``: ``traffic = load(url, users=10, rate=50, writes=0.3)``.

    ``locustfile=`` runs your own locustfile unchanged instead of the built-in scenario;
    ``workers=N`` runs a master and N local workers, ``remote_workers=`` waits for workers
    on other hosts (see docs/load.md). The load is stopped when the test ends, before the
    measurement; its request outcomes and writes are on the timeline.
    """
    from .run import LoadRun
    from .spec import make_spec

    started: list[LoadRun] = []
    timeout = request.config.stash.get(START_TIMEOUT, DEFAULT_START_TIMEOUT)
    max_skew = request.config.stash.get(MAX_CLOCK_SKEW, DEFAULT_MAX_CLOCK_SKEW)

    def start(
        url: str,
        users: int = 10,
        rate: float | None = None,
        writes: float | None = None,
        locustfile: PathLike | Sequence[PathLike] | None = None,
        duration: float | str | None = None,
        workers: int = 0,
        *,
        client: Literal["redis", "postgres", "etcd"] | None = None,
        spawn_rate: float | None = None,
        remote_workers: int | Sequence[str] = 0,
        master_bind_host: str = "127.0.0.1",
        master_port: int | None = None,
        workers_timeout: float | str | None = None,
        missing_after: float | str = "3s",
        on_worker_loss: Literal["error", "continue"] = "error",
        max_clock_skew: float | str | None = None,
        request_timeout: float | str | None = None,
        write_path: str = "/orders",
        read_path: str = "/orders/{key}",
        locust_args: Sequence[str] = (),
        **unknown: object,  # not in LoadFactory: type checkers refuse them; at run time, a clear error
    ) -> LoadRun:
        if unknown:
            from .errors import LoadConfigError

            accepted = ", ".join(p for p in inspect.signature(LoadFactory.__call__).parameters if p != "self")
            raise LoadConfigError(f"load: unexpected keyword argument {next(iter(unknown))!r}; accepted: {accepted}")
        options: dict[str, Any] = {
            "spawn_rate": spawn_rate,
            "remote_workers": remote_workers,
            "master_bind_host": master_bind_host,
            "master_port": master_port,
            "workers_timeout": workers_timeout,
            "missing_after": missing_after,
            "on_worker_loss": on_worker_loss,
            "max_clock_skew": max_skew if max_clock_skew is None else max_clock_skew,
            "write_path": write_path,
            "read_path": read_path,
            "locust_args": locust_args,
            "duration": duration,
            "workers": workers,
        }
        if request_timeout is not None:
            options["request_timeout"] = request_timeout
        target: Any = url
        if client is not None:  # a store (redis, postgres, etcd) through locust users of sink/clients.py
            from .store_load import client_options

            if locustfile is not None:
                options["locustfile"] = locustfile
            target, options = client_options(client, url, users, rate, writes, options)
            rate = writes = None
        elif locustfile is not None:
            options["locustfile"] = locustfile
        spec = make_spec(target, users, rate, writes, **options)
        workdir = tmp_path_factory.mktemp("load")
        traffic = LoadRun(spec, experiment, workdir, start_timeout=timeout)
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
def writer(experiment: Experiment) -> Iterator[WriterFactory]:
    """Open-loop writes through any Python client: ``writes = writer(redis, rate=200, concurrency=4)``.

    ``redis`` is a ``put(key)`` callable or an object with ``put`` and ``classify`` (a datastore
    target, a store client). Stopped at the end of the test, before the measurement.
    """
    from .writer import Writer

    made: list[Writer] = []

    def start(
        target: Any,
        *,
        rate: float = 100.0,
        concurrency: int = 4,
        classify: str | Classifier | None = None,
        name: str | None = None,
        prefix: str | None = None,
        duration: float | str | None = None,
        max_backlog: int | None = None,
    ) -> Writer:
        made.append(
            Writer(
                experiment,
                target,
                rate=rate,
                concurrency=concurrency,
                classify=classify,
                name=name,
                prefix=prefix,
                duration=duration,
                max_backlog=max_backlog,
            )
        )
        experiment.add_source(made[-1])
        return made[-1].start()

    yield start
    for item in made:
        item.stop()
