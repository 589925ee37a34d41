"""Record this machine's raw probe inputs as a fixture: python -m tools.record_machine NAME

Writes tests/fixtures/machines/NAME/inputs.json (see tests/support/machines.py for the keys). Nothing is
interpreted here: the probe's parsers read the recording exactly as they read the live machine.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

from capabilities import openvino_devices  # noqa: E402
from capabilities.engines import installed_version  # noqa: E402
from capabilities.probe import _battery, _core_counts, _cpuinfo_live, _system_live, _virtual_memory  # noqa: E402
from models.engines.registry import packages  # noqa: E402

SYSFS_GLOBS = ("sys/class/accel/*", "sys/bus/pci/devices/*")
SYSFS_FILES = ("vendor", "device", "class")


def record_sysfs(root: Path = Path("/")) -> dict:
    tree: dict = {}
    for pattern in SYSFS_GLOBS:
        for entry in root.glob(pattern):
            rel = str(entry.relative_to(root))
            if entry.is_symlink():
                tree[rel] = {"link": os.readlink(entry)}
            target = entry.resolve()
            device = target / "device" if (target / "device").exists() and "accel" in rel else target
            for name in SYSFS_FILES:
                f = device / name
                if f.is_file():
                    tree[str(f.relative_to(root))] = f.read_text()
            drv = device / "driver"
            if drv.is_symlink():
                tree[str(drv.relative_to(root))] = {"link": os.readlink(drv)}
    return tree


def record() -> dict:
    import openvino

    vm, battery = _virtual_memory(), _battery()
    data = {
        "system": _system_live().__dict__,
        "cpuinfo": {k: v for k, v in _cpuinfo_live().items() if k in (
            "arch", "bits", "count", "brand_raw", "vendor_id_raw", "family", "model", "stepping", "flags")},
        "cores": list(_core_counts()),
        "memory": {"total": vm.total, "available": vm.available},
        "battery": None if battery is None else {"percent": battery.percent, "power_plugged": battery.power_plugged},
        "openvino": openvino_devices.read_live(openvino.Core),
        "engines": {d: v for d in packages() if (v := installed_version(d))},
    }
    if platform.system() == "Linux":
        data["sysfs"] = record_sysfs()
    if platform.system() == "Windows":  # pragma: no cover
        from capabilities import windows_dxgi, windows_npu

        data["dxgi"] = [{"hex": raw.hex()} for raw in windows_dxgi.read_descs()]
        data["npus"] = windows_npu.read_entries()
    return data


if __name__ == "__main__":
    out = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "machines" / sys.argv[1]
    out.mkdir(parents=True, exist_ok=True)
    (out / "inputs.json").write_text(json.dumps(record(), indent=1) + "\n")
    print(f"wrote {out / 'inputs.json'}")
