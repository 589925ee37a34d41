"""Memory and power state, from psutil-shaped readings."""

from __future__ import annotations

from typing import Any

from .profile import MemoryInfo, PowerInfo


def parse_memory(vm: Any) -> MemoryInfo:
    """`vm` is psutil.virtual_memory() or anything with .total and .available."""
    return MemoryInfo(total_bytes=int(vm.total), available_bytes=int(vm.available))


def parse_power(battery: Any, reason_if_none: str = "no battery reported (desktop, VM or server)") -> PowerInfo:
    """`battery` is psutil.sensors_battery(): None on machines without one."""
    if battery is None:
        return PowerInfo(on_battery=None, percent=None, reason=reason_if_none)
    plugged = getattr(battery, "power_plugged", None)
    percent = getattr(battery, "percent", None)
    return PowerInfo(
        on_battery=None if plugged is None else not plugged,
        percent=None if percent is None else float(percent),
        reason="" if plugged is not None else "charger state not reported",
    )
