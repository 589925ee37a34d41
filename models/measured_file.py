"""Measurements kept per machine, for the policy: `<app home>/bench/measured/<machine id>.json`.

A machine is known by what decides its speed (CPU, cores, memory, OS, the devices it has); a measurement
is kept with the engine version that made it and is not used once another version is installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from capabilities import MachineProfile

from .engines import registry
from .settings import Settings
from .speeds import Measured, Measurement


def _dists(engine_id: str) -> tuple[str, ...]:
    """Every distribution that installs the engine, on any device (a measurement names the engine only)."""
    if engine_id not in registry.ids():
        return ()
    row = registry.get(engine_id)
    return tuple(dict.fromkeys(row.dists + tuple(d for ds in row.device_dists.values() for d in ds)))


def machine_id(profile: MachineProfile) -> str:
    cpu, system = profile.cpu, profile.system
    devices = sorted((d.kind, d.id, d.name) for d in profile.devices if d.present)
    key = [system.os, system.arch, cpu.brand, cpu.vendor, cpu.family, cpu.model, cpu.stepping,
           cpu.physical_cores, cpu.logical_cores, round(profile.memory.total_bytes / 2**30), devices]
    return hashlib.sha256(json.dumps(key, default=str).encode()).hexdigest()[:16]


def file_for(settings: Settings, profile: MachineProfile) -> Path:
    return settings.home / "bench" / "measured" / f"{machine_id(profile)}.json"


def write_json(path: Path, data: dict) -> None:
    """Atomic: a temporary file beside it, then a rename; a half-written file never looks complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2, allow_nan=False)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and isinstance(data.get("measured"), dict) else {}


def save(settings: Settings, profile: MachineProfile, entries: dict[str, dict],
         report_path: Path | None = None) -> Path:
    """Merge these measurements (by "<artifact id>@<device id>") into this machine's file."""
    path = file_for(settings, profile)
    data = _read(path) or {"machine": machine_id(profile), "cpu": profile.cpu.brand, "measured": {}}
    for key, entry in entries.items():
        data["measured"][key] = dict(entry, report=str(report_path) if report_path else "")
    write_json(path, data)
    return path


def load(settings: Settings, profile: MachineProfile) -> Measured:
    """What was measured on this machine with the engine versions installed now (the profile's)."""
    figures = {}
    for entry in _read(file_for(settings, profile)).get("measured", {}).values():
        try:
            installed = [profile.engine_version(d) for d in _dists(entry["engine"])]
            if entry.get("engine_version") and entry["engine_version"] not in installed:
                continue  # another version made it
            figures[(entry["artifact"], entry["device"])] = Measurement(
                tokens_per_s=float(entry["tokens_per_s"]), ttft_s=float(entry.get("ttft_s", 0.0)),
                path=str(entry.get("path", "")), measured_at=str(entry.get("measured_at", "")))
        except (KeyError, TypeError, ValueError):
            continue  # an entry this version cannot read: estimated instead
    return Measured(figures)
