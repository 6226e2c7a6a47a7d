"""``faults.blackhole``: one name for "traffic goes in, nothing comes back", two mechanisms.

On a :class:`~.toxics.Proxy` it is the proxy's blackhole toxic (connections are accepted, their
data dropped); on a port with ``netns=`` it is an nftables drop rule (:mod:`.nftables`: SYNs
are dropped too, so connects hang and time out).
"""

from __future__ import annotations

from typing import overload

from .. import validate
from ..errors import ConfigError
from . import toxics
from .netns import NetNamespace
from .nftables import PortBlackhole
from .toxics import BlackholeToxic, Proxy, Stream

__all__ = ["blackhole", "port_blackhole"]


@overload
def blackhole(
    target: Proxy,
    *,
    stream: Stream | None = None,
    toxicity: float = 1.0,
    name: str | None = None,
    max_duration: float | str | None = None,
) -> BlackholeToxic: ...


@overload
def blackhole(
    target: int,
    *,
    netns: NetNamespace | str,
    name: str | None = None,
    max_duration: float | str | None = None,
) -> PortBlackhole: ...


def blackhole(
    target: Proxy | int,
    *,
    netns: NetNamespace | str | None = None,
    stream: Stream | None = None,
    toxicity: float = 1.0,
    name: str | None = None,
    max_duration: float | str | None = None,
) -> BlackholeToxic | PortBlackhole:
    """Drop traffic: ``blackhole(p)`` on a fault proxy, ``blackhole(8080, netns=ns)`` with nftables."""
    if isinstance(target, Proxy):
        if netns is not None:
            raise ConfigError("faults.blackhole: netns= is for a port; a proxy blackhole acts inside the proxy")
        return toxics.blackhole(target, stream=stream, toxicity=toxicity, name=name, max_duration=max_duration)
    if isinstance(target, int) and not isinstance(target, bool):
        if stream is not None or toxicity != 1.0:
            raise ConfigError("faults.blackhole: stream= and toxicity= are for a proxy; a port blackhole drops all")
        return PortBlackhole(target, netns=netns, name=name, max_duration=max_duration)
    raise ConfigError(
        f"faults.blackhole: target={validate.shown(target)} is not accepted; use a Proxy (proxy fixture) "
        "or a port number with netns="
    )


def port_blackhole(
    port: int,
    *,
    netns: NetNamespace | str | None = None,
    name: str | None = None,
    max_duration: float | str | None = None,
) -> PortBlackhole:
    """Former name of ``faults.blackhole(port, netns=...)``, kept as an alias."""
    return PortBlackhole(port, netns=netns, name=name, max_duration=max_duration)
