"""Fixtures of the local targets: ``service`` and the datastores (``redis_server``,
``postgres_server``, ``etcd_cluster``, ``haproxy_server``).

Targets are what faults act on, so nothing here imports :mod:`pytest_resiliency.faults`
(the fault fixtures ``proxy`` and ``netns`` live in :mod:`pytest_resiliency.fault_fixtures`).
Imported at pytest start-up: nothing beyond the standard library and pytest at module level.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, Unpack

import pytest

from .. import context

if TYPE_CHECKING:
    from .datastores.etcd import EtcdCluster
    from .datastores.haproxy import HAProxy
    from .datastores.postgres import PostgresServer
    from .datastores.redis import RedisServer
    from .service import Check, PassThroughOptions, Service, ServiceGroup, ServiceOptions

T = TypeVar("T")


# -- what the factory fixtures give, typed for the tests that annotate them -------------------------
# Each mirrors its target's constructor after the arguments the fixture supplies (a test keeps them
# equal), so a wrong keyword in a test is a type error, not a TypeError at run time.


class RedisServerFactory(Protocol):
    """``redis_server(persistence="aof-always")``: a started :class:`~.datastores.redis.RedisServer`."""

    def __call__(
        self,
        *,
        persistence: str = ...,
        save: float = ...,
        name: str = ...,
        restart_delay: float | str = ...,
        config: dict[str, str] | None = ...,
        timeout: float = ...,
        **options: Unpack[PassThroughOptions],
    ) -> RedisServer: ...


class PostgresServerFactory(Protocol):
    """``postgres_server(synchronous_commit="on")``: a started :class:`~.datastores.postgres.PostgresServer`."""

    def __call__(
        self,
        *,
        synchronous_commit: str = ...,
        wal_writer_delay: float | str = ...,
        fsync: bool = ...,
        settings: dict[str, str] | None = ...,
        user: str | int | None = ...,
        name: str = ...,
        restart_delay: float | str = ...,
        table: str = ...,
        timeout: float = ...,
        **options: Unpack[PassThroughOptions],
    ) -> PostgresServer: ...


class EtcdClusterFactory(Protocol):
    """``etcd_cluster(nodes=3, election="500ms")``: a started :class:`~.datastores.etcd.EtcdCluster`."""

    def __call__(
        self,
        *,
        nodes: int = ...,
        heartbeat: float | str = ...,
        election: float | str = ...,
        name: str = ...,
        restart_delay: float | str = ...,
        timeout: float = ...,
        **options: Unpack[PassThroughOptions],
    ) -> EtcdCluster: ...


class HAProxyFactory(Protocol):
    """``haproxy_server([web1, web2], inter="200ms")``: a started :class:`~.datastores.haproxy.HAProxy`."""

    def __call__(
        self,
        backends: Sequence[Any],
        *,
        mode: str = ...,
        inter: float | str = ...,
        fall: int = ...,
        rise: int = ...,
        redispatch: bool = ...,
        retries: int | None = ...,
        balance: str = ...,
        connect_timeout: float | str = ...,
        server_timeout: float | str = ...,
        name: str = ...,
        **options: Unpack[PassThroughOptions],
    ) -> HAProxy: ...


class ServiceFactory:
    """What the ``service`` fixture gives: call it to start one service, ``.group()`` for a cluster.

    Every service it made is stopped at teardown and its log tail attached to the reports.
    """

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self.started: list[Service] = []

    def define(self, command: str | Sequence[str], **options: Unpack[ServiceOptions]) -> Service:
        """A service configured (ports allocated, placeholders expanded) but not started yet."""
        from .service import Service

        given: dict[str, Any] = dict(options)  # checked by the type checker above, by Service below
        netns = given.get("netns")
        if netns is not None and not isinstance(netns, str):
            given["netns"] = netns.name  # a NetNamespace from the netns fixture
        given.setdefault("log_dir", self._tmp.mktemp("service-logs"))
        svc = Service(command, **given)
        self.started.append(svc)
        exp = context.experiment()
        if exp is not None:
            exp.attach(f"logs:{svc.name}", svc.log_tail)
        return svc

    def __call__(self, command: str | Sequence[str], **options: Unpack[ServiceOptions]) -> Service:
        """Start ``command`` supervised and return once it is ready."""
        return self.define(command, **options).start()

    def group(
        self,
        members: Iterable[Service | Mapping[str, Any]],
        *,
        ready: Check | None = None,
        name: str = "group",
        start_timeout: float | str = 30.0,
    ) -> ServiceGroup:
        """Start services together (each a ``Service`` from :meth:`define`, or a dict of its options
        with ``command``) and wait for one readiness of the whole group."""
        from ..errors import ConfigError
        from .service import Service, ServiceGroup

        if isinstance(members, (str, bytes)) or not hasattr(members, "__iter__"):
            raise ConfigError(f"service.group: members={members!r} must be a list of services or option dicts")
        made = []
        for member in members:
            if isinstance(member, Service):
                made.append(member)
            elif isinstance(member, Mapping) and "command" in member:
                options = dict(member)
                made.append(self.define(options.pop("command"), **options))
            else:
                raise ConfigError(
                    f"service.group: member {member!r} must be a Service (service.define(...)) "
                    "or a dict of service options with 'command'"
                )
        return ServiceGroup(made, ready=ready, name=name, start_timeout=start_timeout).start()

    def stop_all(self) -> None:
        for svc in reversed(self.started):
            svc.stop()


@pytest.fixture
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceFactory]:
    """Factory: ``svc = service(["python", "-m", "http.server", "{port}"], health="http://127.0.0.1:{port}/")``.

    Starts the command under a supervisor (restart policy ``always``, 1 s delay by default),
    returns once ready, attaches its log tail to the test's reports and stops the whole
    process group at teardown. ``service.group([...], ready=...)`` starts a cluster together.
    """
    factory = ServiceFactory(tmp_path_factory)
    try:
        yield factory
    finally:
        factory.stop_all()


def _datastore(make: Callable[[], T]) -> T:
    """Build a datastore target; a missing binary or client library is a skip that names the package."""
    from ..load.stores import StoreError
    from .datastores import MissingBinary

    try:
        return make()
    except (MissingBinary, StoreError) as exc:
        pytest.skip(str(exc))


@pytest.fixture
def redis_server(service: ServiceFactory, tmp_path_factory: pytest.TempPathFactory) -> RedisServerFactory:
    """Factory: ``redis = redis_server(persistence="aof-always")`` (``aof-everysec``, ``rdb``, ``none``).

    A supervised ``redis-server`` (Debian package redis-server), ready when ``PING`` answers.
    """

    def start(**options: Any) -> RedisServer:
        from .datastores.redis import RedisServer

        data = tmp_path_factory.mktemp("redis")
        return _datastore(lambda: RedisServer(service, data, **options)).start()

    return start


@pytest.fixture
def postgres_server(service: ServiceFactory) -> Iterator[PostgresServerFactory]:
    """Factory: ``pg = postgres_server(synchronous_commit="on", wal_writer_delay="200ms")``.

    initdb in a temporary directory, run as an unprivileged account when pytest is root,
    ready when a real query answers (Debian package postgresql, client psycopg).
    """
    made: list[PostgresServer] = []

    def start(**options: Any) -> PostgresServer:
        from .datastores.postgres import PostgresServer

        server = _datastore(lambda: PostgresServer(service, **options))
        made.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in reversed(made):
            server.stop()


@pytest.fixture
def etcd_cluster(service: ServiceFactory, tmp_path_factory: pytest.TempPathFactory) -> EtcdClusterFactory:
    """Factory: ``cluster = etcd_cluster(nodes=3, election="500ms")``, started together, ready at quorum.

    ``faults.kill(cluster.leader)`` kills the leader (Debian package etcd-server).
    """

    def start(**options: Any) -> EtcdCluster:
        from .datastores.etcd import EtcdCluster

        data = tmp_path_factory.mktemp("etcd")
        return _datastore(lambda: EtcdCluster(service, data, **options)).start()

    return start


@pytest.fixture
def haproxy_server(service: ServiceFactory, tmp_path_factory: pytest.TempPathFactory) -> HAProxyFactory:
    """Factory: ``lb = haproxy_server([web1, web2], inter="200ms", fall=3, redispatch=True)``.

    A supervised HAProxy in front of the backends (services or ports; Debian package haproxy).
    """

    def start(backends: Sequence[Any], **options: Any) -> HAProxy:
        from .datastores.haproxy import HAProxy

        data = tmp_path_factory.mktemp("haproxy")
        return _datastore(lambda: HAProxy(service, data, backends, **options)).start()

    return start
