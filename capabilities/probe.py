"""The probe: one call that reads the whole machine, never raises, and says why things are absent.

Every reading comes from a `Sources` field, so tests swap in captures of real machines.
"""

from __future__ import annotations

import codecs
import functools
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import accel, openvino_devices
from .cpu import parse_cpu
from .engines import installed_version, probe_engines
from .memory_power import parse_memory, parse_power
from .profile import Device, MachineProfile, MemoryInfo, PowerInfo, ProfileError, SystemInfo, refresh_hint


def _cpuinfo_cache_file() -> Path:
    home = os.environ.get("PHI3PC_HOME") or Path.home() / ".cache" / "phi3-aipc"
    return Path(home) / "cpuinfo.json"


@functools.lru_cache(maxsize=1)
def _cpuinfo_live() -> dict[str, Any]:
    """py-cpuinfo spawns a subprocess (~1.5 s): call it once per process, and once per boot on disk."""
    import cpuinfo
    import psutil

    key = f"{platform.node()}|{platform.machine()}|{psutil.boot_time():.0f}|{cpuinfo.CPUINFO_VERSION_STRING}"
    cache = _cpuinfo_cache_file()
    try:
        saved = json.loads(cache.read_text())
    except (OSError, ValueError):
        saved = None
    if isinstance(saved, dict) and saved.get("key") == key and isinstance(saved.get("info"), dict):
        return saved["info"]
    info = cpuinfo.get_cpu_info()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": key, "info": info}))
        tmp.replace(cache)
    except OSError:
        pass  # a read-only home only costs time
    return info


def _core_counts() -> tuple[int | None, int | None]:
    import psutil

    return psutil.cpu_count(logical=False), psutil.cpu_count(logical=True)


def _virtual_memory():
    import psutil

    return psutil.virtual_memory()


def _battery():
    import psutil

    sensors = getattr(psutil, "sensors_battery", None)
    return sensors() if sensors else None


def _openvino_live() -> openvino_devices.PropertyMap:
    import openvino  # noqa: PLC0415 - only when the probe runs

    return openvino_devices.read_live(openvino.Core)


def _system_live() -> SystemInfo:
    return SystemInfo(
        os=platform.system(),
        os_version=platform.version() if platform.system() == "Windows" else platform.release(),
        arch=platform.machine(),
        python=platform.python_version(),
    )


@dataclass(frozen=True)
class Sources:
    """Where each reading comes from. Defaults read the live machine."""

    system: Callable[[], SystemInfo] = _system_live
    cpuinfo: Callable[[], dict[str, Any]] = _cpuinfo_live
    core_counts: Callable[[], tuple[int | None, int | None]] = _core_counts
    virtual_memory: Callable[[], Any] = _virtual_memory
    battery: Callable[[], Any] = _battery
    openvino: Callable[[], openvino_devices.PropertyMap] = _openvino_live
    package_version: Callable[[str], str | None] = installed_version
    # the distributions whose versions are read (name -> where they install at all): the caller's, since the probe
    # knows no engine (the app passes models.engines.registry.packages())
    packages: Mapping[str, str] = field(default_factory=dict)
    accelerators: Callable[[SystemInfo], tuple[Device, ...]] = accel.probe_platform


def _why(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}".strip().rstrip(":")


def probe(sources: Sources | None = None) -> MachineProfile:
    src = sources or Sources()
    started = time.perf_counter()
    try:
        system = src.system()
    except Exception:  # noqa: BLE001 - platform.* does not fail in practice; never let it stop the app
        system = SystemInfo(os=sys.platform, os_version="", arch="", python=platform.python_version())

    try:
        physical, logical = src.core_counts()
    except Exception:  # noqa: BLE001
        physical, logical = None, None
    try:
        cpu = parse_cpu(src.cpuinfo(), physical, logical)
    except Exception as err:  # noqa: BLE001
        cpu = replace(parse_cpu(None, physical, logical), reason=f"py-cpuinfo failed: {_why(err)}")

    try:
        memory = parse_memory(src.virtual_memory())
    except Exception as err:  # noqa: BLE001
        memory = MemoryInfo(total_bytes=0, available_bytes=0, reason=f"memory unreadable: {_why(err)}")

    try:
        power = parse_power(src.battery())
    except Exception as err:  # noqa: BLE001
        power = PowerInfo(on_battery=None, percent=None, reason=f"battery state unreadable: {_why(err)}")

    engines = probe_engines(src.packages, src.package_version)
    devices = list(_openvino(src))
    try:
        devices.extend(src.accelerators(system))
    except Exception as err:  # noqa: BLE001
        devices.append(Device(kind="npu", id="?", name="platform accelerator probe", present=False,
                              reason=f"probe failed: {_why(err)}"))
    return MachineProfile(
        system=system,
        cpu=cpu,
        memory=memory,
        power=power,
        devices=tuple(devices),
        engines=engines,
        probe_seconds=round(time.perf_counter() - started, 3),
    )


def _openvino(src: Sources) -> tuple[Device, ...]:
    try:
        found = openvino_devices.parse_devices(src.openvino())
    except ImportError:
        return (Device(kind="cpu", id="CPU", name="OpenVINO", present=False, source="openvino",
                       reason="OpenVINO not installed (no wheel for this platform, or the install failed)"),)
    except Exception as err:  # noqa: BLE001 - a broken plugin or driver must not stop the app
        return (Device(kind="cpu", id="CPU", name="OpenVINO", present=False, source="openvino",
                       reason=f"OpenVINO could not list devices: {_why(err)}"),)
    return found + openvino_devices.missing_kinds(found)


def load_profile(path: str | os.PathLike) -> MachineProfile:
    """A profile saved with `--probe > FILE`; anything wrong with it raises ProfileError naming the fix.

    Windows PowerShell 5.1 writes `>` redirections as UTF-16 LE with a BOM, so the BOM decides the encoding.
    """
    name = os.fspath(path)
    try:
        raw = Path(name).read_bytes()
    except FileNotFoundError as err:
        raise ProfileError(f"{name}: no such file; record one with python launch.py --probe > "
                           f"{Path(name).name}") from err
    except OSError as err:
        raise ProfileError(f"{name}: cannot be read ({_why(err)}); {refresh_hint(name)}") from err
    encoding = "utf-16" if raw[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else "utf-8-sig"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as err:
        raise ProfileError(f"{name}: is not text (not {encoding.upper()}: {err.reason} at byte {err.start}); "
                           f"{refresh_hint(name)}") from err
    return MachineProfile.from_json(text, source=name)
