"""Accelerators outside OpenVINO: the platform's own view of NPUs and DirectX 12 GPUs.

Grown by the probe issue; for now it reports what it does not look at, with the reason.
"""

from __future__ import annotations

from .profile import Device, SystemInfo


def probe_platform(system: SystemInfo) -> tuple[Device, ...]:
    if system.os != "Windows":
        return (Device(kind="gpu", id="dxgi", name="DirectX 12 adapters", present=False, source="dxgi",
                       reason="DirectX 12 needs Windows"),)
    return ()
