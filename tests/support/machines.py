"""Machine fixtures: raw inputs captured from a machine (tests/fixtures/machines/NAME/inputs.json)
replayed through the real probe, on any OS.

inputs.json keys: system, cpuinfo (py-cpuinfo dict), cores [physical, logical], memory {total,
available}, battery (null or {percent, power_plugged}), openvino ({device: {property: value}}, or
null when OpenVINO is not installed), sysfs ({path: text | {"link": target}}, Linux), dxgi (list of
{"hex": DXGI_ADAPTER_DESC1 bytes}, Windows), npus (ComputeAccelerator registry entries, Windows),
engines ({distribution: version}).
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from types import SimpleNamespace

from capabilities import Sources, SystemInfo
from capabilities.accel import PlatformReaders, probe_platform
from models.engines import registry

MACHINES = Path(__file__).resolve().parents[1] / "fixtures" / "machines"


def names() -> list[str]:
    return sorted(p.name for p in MACHINES.iterdir() if (p / "inputs.json").is_file())


def inputs(name: str) -> dict:
    return json.loads((MACHINES / name / "inputs.json").read_text())


def build_tree(root: Path, tree: dict) -> Path:
    """Lay a recorded sysfs tree out under root: text files and symlinks."""
    for rel, content in tree.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, dict):
            os.symlink(content["link"], path)
        else:
            path.write_text(content)
    return root


def _raise(err: BaseException):
    raise err


def sources(name: str, tmp_path: Path, **overrides) -> Sources:
    data = inputs(name)
    root = build_tree(tmp_path / "root", data.get("sysfs") or {})
    readers = PlatformReaders(
        sysfs_root=root,
        dxgi_descs=lambda: [bytes.fromhex(d["hex"]) for d in data.get("dxgi") or []],
        npu_entries=lambda: list(data.get("npus") or []),
    )
    ov = data.get("openvino")
    battery = data.get("battery")
    fields = dict(
        system=lambda: SystemInfo(**data["system"]),
        cpuinfo=lambda: data["cpuinfo"],
        core_counts=lambda: tuple(data["cores"]),
        virtual_memory=lambda: SimpleNamespace(**data["memory"]),
        battery=lambda: None if battery is None else SimpleNamespace(**battery),
        openvino=(lambda: ov) if ov is not None
        else (lambda: _raise(ModuleNotFoundError("No module named 'openvino'"))),
        package_version=lambda dist: data.get("engines", {}).get(dist),
        packages=registry.packages(),
        accelerators=functools.partial(probe_platform, readers=readers),
    )
    fields.update(overrides)
    return Sources(**fields)


def expected(name: str) -> dict:
    return json.loads((MACHINES / name / "expected.json").read_text())
