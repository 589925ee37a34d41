"""OpenVINO's view of the devices: one Device per entry of `Core().available_devices`.

The parser works on a recorded map {device id: {property: value}} so that captures from
real machines (tests/fixtures/machines/*/openvino.json) and the live Core go through the
same code. Property names: openvino `runtime/properties.hpp`, `intel_gpu/properties.hpp`,
`intel_npu/properties.hpp` (shared reference, section B).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .profile import Device

PROPERTIES = (
    "FULL_DEVICE_NAME",
    "DEVICE_TYPE",
    "DEVICE_ARCHITECTURE",
    "OPTIMIZATION_CAPABILITIES",
    "DEVICE_GOPS",
    "GPU_DEVICE_TOTAL_MEM_SIZE",
    "NPU_DEVICE_TOTAL_MEM_SIZE",
    "NPU_DRIVER_VERSION",
    "NPU_COMPILER_VERSION",
    "NPU_MAX_TILES",
)

PropertyMap = Mapping[str, Mapping[str, Any]]


def plain(value: Any) -> Any:
    """OpenVINO returns enums, ov.Type keys and lists; keep JSON-friendly values."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {_type_name(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return _type_name(value)


def _type_name(value: Any) -> str:
    # ov.Type prints as "<Type: 'int8'>" and exposes get_type_name(); DEVICE_TYPE prints as
    # "Type.INTEGRATED" and has .name
    if hasattr(value, "get_type_name"):
        return value.get_type_name()
    if hasattr(value, "name") and isinstance(value.name, str):
        return value.name.lower()
    return str(value)


def read_live(core_factory: Callable[[], Any]) -> PropertyMap:
    """Query a real ov.Core; properties a plugin does not know are left out."""
    core = core_factory()
    found: dict[str, dict[str, Any]] = {}
    for dev in core.available_devices:
        props: dict[str, Any] = {}
        for key in PROPERTIES:
            try:
                props[key] = plain(core.get_property(dev, key))
            except Exception:  # noqa: BLE001 - an unsupported property raises a bare RuntimeError
                continue
        found[dev] = props
    return found


def _version_from_packed(value: Any) -> str | None:
    """NPU_COMPILER_VERSION is (major << 16) | minor."""
    if isinstance(value, int):
        return f"{value >> 16}.{value & 0xFFFF}"
    return None if value is None else str(value)


def _tops(gops: Any) -> float | None:
    if isinstance(gops, Mapping):
        for key in ("int8", "i8", "u8"):
            if key in gops and gops[key]:
                return round(float(gops[key]) / 1000.0, 1)
    return None


def _vendor(name: str) -> str:
    lowered = name.lower()
    for needle, vendor in (("intel", "Intel"), ("nvidia", "NVIDIA"), ("amd", "AMD"), ("radeon", "AMD")):
        if needle in lowered:
            return vendor
    return ""


def parse_devices(props_by_device: PropertyMap) -> tuple[Device, ...]:
    devices = []
    for dev_id, props in props_by_device.items():
        kind = dev_id.split(".")[0].lower()
        name = str(props.get("FULL_DEVICE_NAME") or dev_id)
        dtype = str(props.get("DEVICE_TYPE") or "").lower()
        discrete = None if not dtype or kind == "cpu" else "discrete" in dtype
        memory = props.get("GPU_DEVICE_TOTAL_MEM_SIZE") if kind == "gpu" else props.get("NPU_DEVICE_TOTAL_MEM_SIZE")
        extra = dict(props)
        if kind == "npu":
            extra["NPU_COMPILER_VERSION"] = _version_from_packed(props.get("NPU_COMPILER_VERSION"))
        devices.append(
            Device(
                kind=kind,
                id=dev_id,
                name=name,
                present=True,
                source="openvino",
                vendor=_vendor(name),
                discrete=discrete,
                memory_bytes=int(memory) if isinstance(memory, (int, float)) else None,
                tops=_tops(props.get("DEVICE_GOPS")),
                properties=extra,
            )
        )
    return tuple(devices)


MISSING_REASONS = {
    "gpu": "OpenVINO lists no GPU: no Intel GPU, or its graphics driver / compute runtime is missing",
    "npu": "OpenVINO lists no NPU: no Intel NPU, or its NPU driver is missing",
}


def missing_kinds(found: tuple[Device, ...]) -> tuple[Device, ...]:
    """An absent entry, with the reason, for each kind OpenVINO could run on but did not list."""
    kinds = {d.kind for d in found}
    return tuple(Device(kind=k, id=k.upper(), name=f"OpenVINO {k.upper()}", present=False, source="openvino",
                        reason=why) for k, why in MISSING_REASONS.items() if k not in kinds)
