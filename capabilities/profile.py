"""The machine profile: what the probe found, as frozen dataclasses, with a JSON round trip."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import PurePath
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
    name: str  # distribution name, e.g. "openvino-genai" (a PyPI name, not an engine id)
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
    def from_dict(cls, data: Any, source: str = "the probe file") -> MachineProfile:
        """Read a profile written by `to_json`, strictly: a wrong type raises ProfileError naming the field."""
        check = _Checker(source)
        if not isinstance(data, dict):
            raise check.error(f"must hold a JSON object (a machine profile), got {_describe(data)}")
        if "schema_version" not in data:
            raise check.error("schema_version is missing")
        version = data["schema_version"]
        if not _is_int(version) or version != SCHEMA_VERSION:
            raise check.error(f"schema_version is {_describe(version, bare=True)}; "
                              f"this version of the app reads schema_version {SCHEMA_VERSION}")
        return cls(
            system=check.build(SystemInfo, check.section(data, "system"), "system"),
            cpu=check.build(CpuInfo, check.section(data, "cpu"), "cpu"),
            memory=check.build(MemoryInfo, check.section(data, "memory"), "memory"),
            power=check.build(PowerInfo, check.section(data, "power"), "power"),
            devices=check.build_list(Device, data, "devices"),
            engines=check.build_list(EngineInstall, data, "engines", required=False),
            schema_version=version,
            probe_seconds=check.value(data, "probe_seconds", "float", "", default=0.0),
        )

    @classmethod
    def from_json(cls, text: str, source: str = "the probe file") -> MachineProfile:
        if not text.strip():
            raise _Checker(source).error("the file is empty")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise _Checker(source).error(f"not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})") from err
        return cls.from_dict(data, source)


class ProfileError(ValueError):
    """A machine profile file (--probe-file) that cannot be used: one line naming the file, the field and the fix."""


def refresh_hint(source: str) -> str:
    return f"record the file again with python launch.py --probe > {PurePath(source).name or 'my-pc.json'}"


def _describe(value: Any, bare: bool = False) -> str:
    """How a JSON value reads in a message: the string "16000000000", the number 7, true, null, an array."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, str):
        shown = json.dumps(value if len(value) <= 40 else value[:37] + "...")
        return shown if bare else f"the string {shown}"
    if isinstance(value, (int, float)):
        return repr(value) if bare else f"the number {value!r}"
    return "an array" if isinstance(value, list) else "an object"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# annotation (as written in the dataclasses above) -> (what it must be, test, conversion)
_TYPES: dict[str, tuple[str, Callable[[Any], bool], Callable[[Any], Any]]] = {
    "str": ("a string", lambda v: isinstance(v, str), str),
    "str | None": ("a string or null", lambda v: v is None or isinstance(v, str), lambda v: v),
    "int": ("an integer", _is_int, int),
    "int | None": ("an integer or null", lambda v: v is None or _is_int(v), lambda v: v),
    "bool": ("true or false", lambda v: isinstance(v, bool), bool),
    "bool | None": ("true, false or null", lambda v: v is None or isinstance(v, bool), lambda v: v),
    "float": ("a number", _is_number, float),
    "float | None": ("a number or null", lambda v: v is None or _is_number(v),
                     lambda v: None if v is None else float(v)),
    "tuple[str, ...]": ("a list of strings", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
                        tuple),
    "dict[str, Any]": ("an object", lambda v: isinstance(v, dict), dict),
}


class _Checker:
    def __init__(self, source: str):
        self.source = source

    def error(self, what: str) -> ProfileError:
        return ProfileError(f"{self.source}: {what}; {refresh_hint(self.source)}")

    def value(self, data: dict, key: str, annotation: str, prefix: str, default: Any = MISSING) -> Any:
        where = f"{prefix}{key}"
        if key not in data:
            if default is MISSING:
                raise self.error(f"{where} is missing")
            return default
        what, ok, convert = _TYPES[annotation]
        if key.endswith("_bytes"):
            what = what.replace("an integer", "an integer number of bytes")
        value = data[key]
        if not ok(value):
            raise self.error(f"{where} must be {what}, got {_describe(value)}")
        return convert(value)

    def section(self, data: dict, key: str) -> Any:
        if key not in data:
            raise self.error(f"{key} is missing")
        return data[key]

    def build(self, kind: type, section: Any, where: str) -> Any:
        """One dataclass from one JSON object, each field checked against its annotation."""
        if not isinstance(section, dict):
            raise self.error(f"{where} must be an object, got {_describe(section)}")
        values = {}
        for f in fields(kind):
            default = (f.default if f.default is not MISSING
                       else f.default_factory() if f.default_factory is not MISSING else MISSING)
            values[f.name] = self.value(section, f.name, f.type, f"{where}.", default)
        return kind(**values)

    def build_list(self, kind: type, data: dict, key: str, required: bool = True) -> tuple:
        if key not in data:
            if required:
                raise self.error(f"{key} is missing")
            return ()
        items = data[key]
        if not isinstance(items, list):
            raise self.error(f"{key} must be a list of objects, got {_describe(items)}")
        return tuple(self.build(kind, item, f"{key}[{i}]") for i, item in enumerate(items))
