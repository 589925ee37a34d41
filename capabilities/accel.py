"""Accelerators outside OpenVINO: the platform's own view of NPUs and DirectX 12 GPUs.

One function per platform; the readers that touch the OS are injected, so captures of real
machines go through the same code as the live machine.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import npu_linux, windows_dxgi, windows_npu
from .profile import Device, SystemInfo


@dataclass(frozen=True)
class PlatformReaders:
    sysfs_root: Path = Path("/")
    access: Callable[[str, int], bool] = os.access
    dxgi_descs: Callable[[], list[bytes]] = windows_dxgi.read_descs
    npu_entries: Callable[[], list[dict]] = windows_npu.read_entries


def _why(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def probe_platform(system: SystemInfo, readers: PlatformReaders = PlatformReaders()) -> tuple[Device, ...]:
    no_dx12 = Device("gpu", "dxgi", "DirectX 12 adapters", False, "DirectX 12 needs Windows", "dxgi")
    if system.os == "Linux":
        try:
            npus = npu_linux.probe(readers.sysfs_root, readers.access)
        except Exception as err:  # noqa: BLE001 - an odd sysfs must not stop the app
            npus = (Device("npu", "accel", "NPU", False, f"sysfs unreadable: {_why(err)}", "sysfs"),)
        return npus + (no_dx12,)
    if system.os == "Windows":
        try:
            gpus = windows_dxgi.parse_descs(readers.dxgi_descs())
        except Exception as err:  # noqa: BLE001 - dxgi.dll missing, COM failure, ...
            gpus = (Device("gpu", "dxgi", "DirectX 12 adapters", False, f"DXGI probe failed: {_why(err)}", "dxgi"),)
        try:
            npus = windows_npu.parse_entries(readers.npu_entries())
        except Exception as err:  # noqa: BLE001 - registry access denied, ...
            npus = (Device("npu", "pnp", "NPU", False, f"device registry unreadable: {_why(err)}", "windows-pnp"),)
        return gpus + npus
    return (no_dx12, Device("npu", "npu", "NPU", False, f"NPUs are not supported on {system.os}", ""))
