"""The machine profile: what the probe found, as frozen dataclasses, with a JSON round trip."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class SystemInfo:
    os: str  # "Linux", "Windows", "Darwin"
    os_version: str
    arch: str  # "x86_64", "AMD64", "ARM64", ...
    python: str


@dataclass(frozen=True)
class CpuInfo:
    brand: str
    vendor: str  # "GenuineIntel", "AuthenticAMD", "Qualcomm", ...
    family: int | None
    model: int | None
    stepping: int | None
    physical_cores: int | None
    logical_cores: int | None
    features: tuple[str, ...] = ()  # inference-relevant ISA features, normalised names
    intel_generation: str | None = None  # "Meteor Lake", ... from family/model numbers
    reason: str = ""  # why fields are missing, if they are


@dataclass(frozen=True)
class MemoryInfo:
    total_bytes: int  # 0 when unknown (then `reason` says why)
    available_bytes: int
    reason: str = ""


@dataclass(frozen=True)
class PowerInfo:
    on_battery: bool | None  # None: the platform does not report it
    percent: float | None
    reason: str = ""


@dataclass(frozen=True)
class Device:
    """A compute device found (present) or looked for and not usable (absent, with the reason)."""

    kind: str  # "cpu", "gpu", "npu"
    id: str  # the id its runtime uses: "CPU", "GPU.0", "NPU", "dxgi:0", "accel0"
    name: str
    present: bool
    reason: str = ""  # why absent, or a caveat when present
    source: str = ""  # "openvino", "dxgi", "sysfs", "windows-pnp"
    vendor: str = ""  # "Intel", "AMD", "NVIDIA", "Qualcomm", ...
    discrete: bool | None = None
    memory_bytes: int | None = None  # dedicated memory for a discrete GPU, else the shared pool
    tops: float | None = None
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EngineInstall:
    name: str  # distribution name, e.g. "openvino-genai"
    version: str | None
    reason: str = ""  # why not installed / not usable here


@dataclass(frozen=True)
class MachineProfile:
    system: SystemInfo
    cpu: CpuInfo
    memory: MemoryInfo
    power: PowerInfo
    devices: tuple[Device, ...]
    engines: tuple[EngineInstall, ...]
    schema_version: int = SCHEMA_VERSION
    probe_seconds: float = 0.0

    def present(self, kind: str) -> tuple[Device, ...]:
        return tuple(d for d in self.devices if d.kind == kind and d.present)

    def engine_version(self, name: str) -> str | None:
        return next((e.version for e in self.engines if e.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MachineProfile:
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"probe file has schema_version {version!r}; this version reads {SCHEMA_VERSION}")
        return cls(
            system=_build(SystemInfo, data["system"]),
            cpu=_build(CpuInfo, {**data["cpu"], "features": tuple(data["cpu"].get("features", ()))}),
            memory=_build(MemoryInfo, data["memory"]),
            power=_build(PowerInfo, data["power"]),
            devices=tuple(_build(Device, d) for d in data.get("devices", ())),
            engines=tuple(_build(EngineInstall, e) for e in data.get("engines", ())),
            schema_version=version,
            probe_seconds=float(data.get("probe_seconds", 0.0)),
        )

    @classmethod
    def from_json(cls, text: str) -> MachineProfile:
        return cls.from_dict(json.loads(text))


def _build(kind: type, data: dict[str, Any]):
    known = {f.name for f in fields(kind)}
    return kind(**{k: v for k, v in data.items() if k in known})
