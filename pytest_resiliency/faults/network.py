"""Former home of the network faults, kept so old imports keep working.

They now live in modules with one job: :mod:`.toxics` (the fault proxy client and its
toxics), :mod:`.netns` (network namespaces), :mod:`.nftables` (the packet blackhole) and
:mod:`.blackholes` (``faults.blackhole``, for a proxy or a port). Use ``from pytest_resiliency
import faults`` (and ``faults.Proxy``) rather than this module.
"""

from __future__ import annotations

from .blackholes import blackhole, port_blackhole
from .netns import NetNamespace
from .nftables import PortBlackhole
from .toxics import (
    STREAMS,
    TOXIC_CLASSES,
    TOXICS,
    Proxy,
    Toxic,
    bandwidth,
    down,
    latency,
    limit_data,
    reset_peer,
    slicer,
    timeout,
    toxic,
)

__all__ = [
    "STREAMS",
    "TOXICS",
    "TOXIC_CLASSES",
    "NetNamespace",
    "PortBlackhole",
    "Proxy",
    "Toxic",
    "bandwidth",
    "blackhole",
    "down",
    "latency",
    "limit_data",
    "port_blackhole",
    "reset_peer",
    "slicer",
    "timeout",
    "toxic",
]
