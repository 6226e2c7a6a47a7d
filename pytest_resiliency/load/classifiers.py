"""Error classifiers: was a failed write refused (``fail``) or is its fate unknown (``indeterminate``)?

The ledger's honesty rests on this one question (after Jepsen): a write the store provably
never applied is ``fail``; a write that may have been applied — the connection dropped after
the request was sent, a timeout, a leader change while the proposal was in flight — is
``indeterminate`` and never counts as lost. When in doubt, ``indeterminate``: calling an
applied write ``fail`` would hide nothing, but calling an unknown one ``fail`` and then
finding it present is reported as ``failed_present``.

Standard library only: the client libraries are recognised by class and module names, so
this module imports neither redis-py nor psycopg (and runs inside locust as well).
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ConfigError
from .records import error_name

FAIL, INDETERMINATE = "fail", "indeterminate"
Classifier = Callable[[BaseException], str]


class NotSent(Exception):
    """Raise it from a ``put`` to say the write was provably never sent: it is ``fail``."""


class EtcdError(Exception):
    """An error answer of etcd's v3 JSON gateway: HTTP status, gRPC code and etcd's message."""

    def __init__(self, status: int, message: str, code: int | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.code = code


def _chain(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(found) < 6:
        found.append(current)
        current = current.__cause__ or current.__context__
        reason = getattr(found[-1], "reason", None)  # urllib's URLError wraps the OSError in .reason
        if current is None and isinstance(reason, BaseException):
            current = reason
    return found


def _refused(exc: BaseException) -> bool:
    """The connection was never made, so nothing was sent."""
    for item in _chain(exc):
        if isinstance(item, (ConnectionRefusedError, NotSent)):
            return True
        text = str(item)
        if "Connection refused" in text or "Errno 111" in text or "Error 111 " in text:
            return True
    return False


def _mro(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def default(exc: BaseException) -> str:
    """Any client: a refused connection (or :class:`NotSent`) is ``fail``, everything else ``indeterminate``."""
    return FAIL if _refused(exc) else INDETERMINATE


# -- redis-py -------------------------------------------------------------------------------

# Errors the server returns *instead of* executing the command: the write was refused.
REDIS_REFUSED = {
    "BusyLoadingError": "LOADING: still loading the dataset after a restart",
    "ReadOnlyError": "READONLY: a replica refuses writes",
    "ResponseError": "an error reply (MISCONF, OOM, WRONGTYPE...): the command did not run",
    "AuthenticationError": "NOAUTH / WRONGPASS",
    "DataError": "the client refused the arguments before sending",
}


def redis(exc: BaseException) -> str:
    """redis-py: error replies (LOADING, READONLY, MISCONF, OOM...) and refused connections are
    ``fail``; a timeout or a connection lost after sending is ``indeterminate``.

    ``LOADING`` ("Redis is loading the dataset in memory") comes from a server that just
    restarted and refuses every command until its AOF or RDB is loaded: a definite refusal.
    """
    names = _mro(exc)
    if "TimeoutError" in names and "ConnectionError" not in names:
        return INDETERMINATE
    if names & set(REDIS_REFUSED):
        return FAIL
    return FAIL if _refused(exc) else INDETERMINATE


# -- psycopg 3 ------------------------------------------------------------------------------

# SQLSTATEs that mean the statement did not run (or was rolled back) — a refusal.
PSYCOPG_REFUSED_SQLSTATES = {
    "57P03": "cannot_connect_now: the database system is starting up / in recovery",
    "25006": "read_only_sql_transaction: a standby refuses writes",
    "53300": "too_many_connections",
    "57014": "query_canceled (statement_timeout): rolled back",
    "40001": "serialization_failure: rolled back",
    "40P01": "deadlock_detected: rolled back",
    "08001": "sqlclient_unable_to_establish_sqlconnection",
    "08004": "sqlserver_rejected_establishment_of_sqlconnection",
    "28000": "invalid_authorization_specification",
    "28P01": "invalid_password",
}
# Text of a connection attempt that failed: nothing of the statement was sent.
_PSYCOPG_CONNECT = (
    "connection failed",
    "could not connect",
    "Connection refused",
    "the database system is starting up",
    "the database system is in recovery mode",
    "the database system is shutting down",
    "the database system is not yet accepting connections",
)


def psycopg(exc: BaseException) -> str:
    """psycopg 3: a failed connection attempt, "the database system is starting up" and SQLSTATEs
    that mean "not executed / rolled back" are ``fail``; a connection lost while a statement
    (its implicit COMMIT) was in flight — "server closed the connection unexpectedly",
    "terminating connection" (57P01, 57P02, 08006) — is ``indeterminate``.
    """
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str):
        if sqlstate in PSYCOPG_REFUSED_SQLSTATES or sqlstate.startswith(("22", "23", "42")):
            return FAIL  # data, integrity and syntax errors: the statement was rejected
        return INDETERMINATE
    if any(text in str(exc) for text in _PSYCOPG_CONNECT) or _refused(exc):
        return FAIL
    return INDETERMINATE


# -- etcd v3 JSON gateway -------------------------------------------------------------------

# etcd's own messages that mean the proposal was dropped before it could be committed.
ETCD_REFUSED = {
    "etcdserver: no leader": "no leader to propose to: the proposal was never made",
    "raft proposal dropped": "raft dropped the proposal (no leader, leader transfer)",
    "etcdserver: too many requests": "the server's backlog refused it",
    "etcdserver: request is too large": "refused by size",
    "etcdserver: not capable": "refused by the cluster version",
    "etcdserver: unhealthy cluster": "refused: the cluster lacks a quorum of active members",
    "etcdserver: mvcc: database space exceeded": "NOSPACE alarm: writes refused",
}
# Messages that mean the proposal may be committed later: never count it as lost.
ETCD_UNKNOWN = {
    "etcdserver: request timed out": "proposal in flight when the deadline passed",
    "etcdserver: leader changed": "the leader changed while the proposal was in flight",
    "etcdserver: server stopped": "the member stopped with the proposal in flight",
    "etcdserver: request timed out, possibly due to previous leader failure": "in flight across an election",
    "etcdserver: request timed out, possibly due to connection lost": "in flight, connection lost",
}


def etcd(exc: BaseException) -> str:
    """etcd's v3 JSON gateway (HTTP): messages that mean "never proposed" are ``fail``
    (no leader, proposal dropped, too many requests...), timeouts and leader changes are
    ``indeterminate``; a refused connection is ``fail``, a reset or timeout ``indeterminate``;
    an HTTP 4xx (a malformed request) is ``fail``.
    """
    if isinstance(exc, EtcdError):
        message = exc.message
        if any(message.startswith(m) for m in ETCD_UNKNOWN):
            return INDETERMINATE
        if any(m in message for m in ETCD_REFUSED):
            return FAIL
        return FAIL if 400 <= exc.status < 500 else INDETERMINATE
    return FAIL if _refused(exc) else INDETERMINATE


CLASSIFIERS: dict[str, Classifier] = {"default": default, "redis": redis, "psycopg": psycopg, "etcd": etcd}


def get(classifier: str | Classifier | None) -> Classifier:
    """A classifier by name (``redis``, ``psycopg``, ``etcd``, ``default``) or the callable itself."""
    if classifier is None:
        return default
    if isinstance(classifier, str):
        try:
            return CLASSIFIERS[classifier]
        except KeyError:
            raise ConfigError(
                f"classify={classifier!r} is not a known classifier; accepted: {', '.join(CLASSIFIERS)} "
                "or a callable(exception) -> 'fail' | 'indeterminate'"
            ) from None
    if callable(classifier):
        return classifier
    raise ConfigError(f"classify={classifier!r} must be a classifier name or a callable(exception) -> status")


def label(exc: BaseException) -> str:
    """A short, low-cardinality name for the timeline (no ports, no keys)."""
    if isinstance(exc, EtcdError):
        return exc.message.split(",")[0][:80] or f"HTTP {exc.status}"
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str):
        return f"{type(exc).__name__} {sqlstate}"
    names = _mro(exc)
    if names & set(REDIS_REFUSED) and type(exc).__module__.startswith("redis"):
        return type(exc).__name__
    if type(exc).__module__.startswith("psycopg") and any(t in str(exc) for t in _PSYCOPG_CONNECT[3:]):
        return "starting up" if "starting up" in str(exc) else type(exc).__name__
    return error_name(exc) or type(exc).__name__
