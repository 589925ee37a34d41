"""NPUs on Linux, read from sysfs: `/sys/class/accel/accel*` and the PCI bus behind it.

Both the Intel (`intel_vpu`) and the AMD (`amdxdna`) drivers expose `/dev/accel/accelN`
(kernel drivers/accel/Kconfig). A PCI device of an NPU with no driver bound means
"NPU present, driver missing", which the user can fix; no such device means "no NPU".
Sources: shared/reference/phi3-artifacts-and-devices.md, section E; intel/linux-npu-driver docs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from .profile import Device

# PCI device ids of NPUs (vendor 0x8086 Intel, 0x1022 AMD)
KNOWN_NPUS: dict[tuple[int, int], tuple[str, str]] = {
    (0x8086, 0x7D1D): ("Intel", "Intel NPU (Meteor Lake)"),
    (0x8086, 0xAD1D): ("Intel", "Intel NPU (Arrow Lake)"),
    (0x8086, 0x643E): ("Intel", "Intel NPU (Lunar Lake)"),
    (0x8086, 0xB03E): ("Intel", "Intel NPU (Panther Lake)"),
    (0x1022, 0x1502): ("AMD", "AMD XDNA NPU (Phoenix / Hawk Point)"),
    (0x1022, 0x17F0): ("AMD", "AMD XDNA 2 NPU (Strix / Krackan)"),
}
DRIVERS = {"intel_vpu": "Intel", "amdxdna": "AMD"}
DRIVER_FOR = {"Intel": "intel_vpu", "AMD": "amdxdna"}
PROCESSING_ACCELERATOR_CLASS = 0x1200  # PCI base class 0x12, subclass 0x00


def _hex(path: Path) -> int | None:
    try:
        return int(path.read_text().strip(), 16)
    except (OSError, ValueError):
        return None


def _driver(device_dir: Path) -> str | None:
    link = device_dir / "driver"
    try:
        return Path(os.readlink(link)).name if link.is_symlink() else None
    except OSError:
        return None


def probe(root: Path = Path("/"), access: Callable[[str, int], bool] = os.access) -> tuple[Device, ...]:
    devices: list[Device] = []
    bound: set[str] = set()
    accel_class = root / "sys/class/accel"
    for node in sorted(accel_class.glob("accel*")) if accel_class.is_dir() else []:
        dev_dir = node / "device"
        driver = _driver(dev_dir)
        vendor_id, device_id = _hex(dev_dir / "vendor"), _hex(dev_dir / "device")
        vendor = DRIVERS.get(driver or "", "")
        known = KNOWN_NPUS.get((vendor_id or 0, device_id or 0))
        name = known[1] if known else f"NPU ({driver or 'unknown driver'})"
        try:
            bound.add(os.path.realpath(dev_dir))
        except OSError:
            pass
        dev_node = root / "dev/accel" / node.name
        pci = f"{vendor_id or 0:04x}:{device_id or 0:04x}"
        props = {"driver": driver, "pci_id": pci, "dev_node": f"/dev/accel/{node.name}"}
        if not dev_node.exists():
            devices.append(Device("npu", node.name, name, False, f"{dev_node} is missing (udev rule?)",
                                  "sysfs", vendor, properties=props))
        elif not access(str(dev_node), os.R_OK | os.W_OK):
            devices.append(Device("npu", node.name, name, False,
                                  f"no permission to open /dev/accel/{node.name}: add your user to the 'render' "
                                  "group (sudo usermod -aG render $USER), then log in again",
                                  "sysfs", vendor, properties=props))
        else:
            caveat = ("" if vendor == "Intel"
                      else "AMD XDNA NPU: needs AMD's Ryzen AI software, which this app does not use")
            devices.append(Device("npu", node.name, name, True, caveat, "sysfs", vendor,
                                  properties=props))
    devices.extend(_unbound_pci_npus(root, bound))
    if not devices:
        devices.append(Device("npu", "accel", "NPU", False, "no NPU on this machine (no /dev/accel device, "
                              "no NPU on the PCI bus)", "sysfs"))
    return tuple(devices)


def _unbound_pci_npus(root: Path, bound: set[str]) -> list[Device]:
    found = []
    pci = root / "sys/bus/pci/devices"
    for dev in sorted(pci.iterdir()) if pci.is_dir() else []:
        ids = (_hex(dev / "vendor") or 0, _hex(dev / "device") or 0)
        klass = _hex(dev / "class")
        known = KNOWN_NPUS.get(ids)
        if known is None and (klass is None or klass >> 8 != PROCESSING_ACCELERATOR_CLASS or ids[0] != 0x8086):
            continue
        try:
            if os.path.realpath(dev) in bound:
                continue
        except OSError:
            pass
        vendor, name = known or ("Intel", "Intel processing accelerator")
        driver = _driver(dev)
        want = DRIVER_FOR[vendor]
        if driver == want:
            continue  # bound, but no accel node yet: reported by the accel loop when it appears
        reason = (f"{name} found on the PCI bus ({ids[0]:04x}:{ids[1]:04x}) but the {want} driver is not loaded: "
                  + ("install Intel's linux-npu-driver (kernel 6.6+ has intel_vpu), then `sudo modprobe intel_vpu`"
                     if vendor == "Intel" else "install AMD's amdxdna driver"))
        found.append(Device("npu", dev.name, name, False, reason, "sysfs", vendor,
                            properties={"pci_id": f"{ids[0]:04x}:{ids[1]:04x}", "driver": driver}))
    return found
