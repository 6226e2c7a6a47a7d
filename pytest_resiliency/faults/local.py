"""Former home of the local faults, kept so old imports keep working.

The faults now live in modules with one job: :mod:`.process` (kill, pause, restart),
:mod:`.stress` (cpu, memory and io stress), :mod:`.cgroups` (confinement) and :mod:`.disk`.
Use ``from pytest_resiliency import faults`` rather than this module.
"""

from __future__ import annotations

from .cgroups import CGROUP_ROOT
from .disk import DiskFill, disk_fill
from .process import Kill, Pause, Restart, kill, pause, restart
from .stress import ENGINES, CpuStress, IoStress, MemoryStress, cpu_stress, io_stress, memory_stress

__all__ = [
    "CGROUP_ROOT",
    "ENGINES",
    "CpuStress",
    "DiskFill",
    "IoStress",
    "Kill",
    "MemoryStress",
    "Pause",
    "Restart",
    "cpu_stress",
    "disk_fill",
    "io_stress",
    "kill",
    "memory_stress",
    "pause",
    "restart",
]
