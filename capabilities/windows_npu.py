"""NPUs on Windows: the `ComputeAccelerator` device class ("Neural processors" in Device Manager).

NPUs are MCDM devices in class {F01A9D53-3FF6-48D2-9F97-C8A7004BE10C} (Microsoft's MCDM guidelines);
the driver key of each sits under HKLM\\SYSTEM\\CurrentControlSet\\Control\\Class\\{guid}\\000N.
`read_entries()` is the only Windows code; `parse_entries()` works on captures.
"""

from __future__ import annotations

from .profile import Device

COMPUTE_ACCELERATOR_CLASS = "{f01a9d53-3ff6-48d2-9f97-c8a7004be10c}"
CLASS_KEY = r"SYSTEM\CurrentControlSet\Control\Class" + "\\" + COMPUTE_ACCELERATOR_CLASS
VALUES = ("DriverDesc", "ProviderName", "DriverVersion", "MatchingDeviceId")


def _vendor(entry: dict) -> str:
    text = " ".join(str(entry.get(k, "")) for k in VALUES).lower()
    if "ven_8086" in text or "intel" in text:
        return "Intel"
    if "ven_1022" in text or "amd" in text or "advanced micro devices" in text:
        return "AMD"
    if "qcom" in text or "qualcomm" in text or "hexagon" in text:
        return "Qualcomm"
    return ""


CAVEATS = {
    "AMD": "AMD Ryzen AI NPU: runs Phi-3 only through AMD's Ryzen AI builds of ONNX Runtime GenAI, "
           "which this app does not install",
    "Qualcomm": "Qualcomm Hexagon NPU: runs Phi-3 only through Qualcomm's QNN / AI Hub builds, "
                "which this app does not install",
}


def parse_entries(entries: list[dict]) -> tuple[Device, ...]:
    devices = []
    for i, entry in enumerate(entries):
        vendor = _vendor(entry)
        devices.append(Device(
            kind="npu", id=f"pnp:{i}", name=str(entry.get("DriverDesc") or "Neural processor"), present=True,
            reason=CAVEATS.get(vendor, ""), source="windows-pnp", vendor=vendor,
            properties={k: entry[k] for k in VALUES if k in entry},
        ))
    if not devices:
        devices.append(Device("npu", "pnp", "NPU", False,
                              "Windows lists no neural processor (ComputeAccelerator class is empty): "
                              "no NPU, or its driver is not installed", "windows-pnp"))
    return tuple(devices)


def read_entries() -> list[dict]:  # pragma: no cover - Windows only
    import winreg

    entries = []
    try:
        root = winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, CLASS_KEY)
    except FileNotFoundError:
        return entries  # the class does not exist before the first NPU driver install
    with root:
        i = 0
        while True:
            try:
                sub = winreg.EnumKey(root, i)
            except OSError:
                break
            i += 1
            if not sub.isdigit():
                continue  # "Properties" and similar
            with winreg.OpenKey(root, sub) as key:
                entry = {}
                for name in VALUES:
                    try:
                        entry[name] = winreg.QueryValueEx(key, name)[0]
                    except FileNotFoundError:
                        pass
                entries.append(entry)
    return entries
