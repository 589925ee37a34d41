"""One row per engine: everything the rest of the app knows about an engine is read from here.

Adding an engine means an adapter (a class behind the seam of base.py), a row here and rows in catalog.toml. No
heavy imports: the adapter is named as "module:Class" and imported only when that engine is loaded.

    row = registry.get("onnxruntime-genai")
    row.name, row.devices, row.dists_for("dml")
    engine = registry.adapter(spec)(spec)      # what models.engines.load does
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class EngineRow:
    id: str  # what the catalog, the policy, the benchmark files and a recorded run call it
    name: str  # shown to people
    dists: tuple[str, ...]  # any of these distributions installs it (the probe reads their versions)
    formats: tuple[str, ...]  # the artifact formats it reads (models/formats.py)
    devices: tuple[str, ...]  # device kinds it runs on: cpu | gpu (OpenVINO's GPU plugin) | npu | dml
    adapter: str  # "module:Class", relative to models.engines
    batching_adapter: str = ""  # "module:Class" that answers several at once, on `batching` devices
    batching: tuple[str, ...] = ()  # device kinds where it runs several answers at once (continuous batching)
    assisted: tuple[str, ...] = ()  # device kinds where a draft model or prompt lookup works
    structured_output: bool = False  # holds an answer to a JSON schema while it is written
    device_dists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # a device kind's own distributions
    dist_limits: Mapping[str, str] = field(default_factory=dict)  # distribution -> where it installs at all
    probe_source: str = ""  # the probe's source for its GPU and NPU devices ("openvino"); "" any source
    tuned_cpu: str = ""  # "intel" | "other": the CPUs this engine's INT4 path is tuned for
    tuned_note: str = ""  # why, as the policy says it
    only_os: str = ""  # the one OS it installs on ("Windows"), with `only_os_note`
    only_os_note: str = ""
    retired: str = ""  # why it ranks last (archived upstream): said by the policy
    weight_files: tuple[str, ...] = ()  # the files it reads per token, for the benchmark's roofline
    raw_bench: str = ""  # "module:function(engine) -> (run, close)": the benchmark's native-API path
    kv_value: str = ""  # "module:function(device id) -> (bytes, what)": a KV element as it keeps it (the roofline)

    def dists_for(self, kind: str) -> tuple[str, ...]:
        return tuple(self.device_dists.get(kind, self.dists))

    def batches_on(self, kind: str) -> bool:
        return kind in self.batching


_ROWS = (
    EngineRow(
        id="openvino-genai", name="OpenVINO GenAI", dists=("openvino-genai",), formats=("openvino-ir", "gguf"),
        devices=("cpu", "gpu", "npu"), adapter="openvino_genai:OpenVinoGenAIEngine",
        batching_adapter="openvino_batching:BatchingOpenVinoEngine", batching=("cpu", "gpu"),
        assisted=("cpu", "gpu"), structured_output=True, probe_source="openvino", tuned_cpu="intel",
        tuned_note="OpenVINO INT4 is the tuned path on an Intel CPU", weight_files=("openvino_model*.bin",),
        raw_bench="raw_paths:openvino", kv_value="raw_paths:openvino_kv_value"),
    EngineRow(
        id="onnxruntime-genai", name="ONNX Runtime GenAI", dists=("onnxruntime-genai", "onnxruntime-genai-directml"),
        formats=("onnx-genai",), devices=("cpu", "dml"), adapter="onnxruntime_genai:OnnxRuntimeGenAIEngine",
        structured_output=True, device_dists={"dml": ("onnxruntime-genai-directml",)},
        dist_limits={"onnxruntime-genai-directml": "Windows only (DirectML wheels)"}, tuned_cpu="other",
        tuned_note="ONNX Runtime GenAI INT4 is Microsoft's CPU build for non-Intel CPUs",
        weight_files=("*.onnx", "*.onnx.data", "*.onnx_data"), raw_bench="raw_paths:onnxruntime",
        kv_value="raw_paths:onnxruntime_kv_value"),
    EngineRow(
        id="npu-acceleration-library", name="Intel NPU Acceleration Library", dists=("intel-npu-acceleration-library",),
        formats=("hf-checkpoint",), devices=("npu",), adapter="npu_library:NpuLibraryEngine",
        dist_limits={"intel-npu-acceleration-library": "Windows only (its wheels); archived upstream"},
        only_os="Windows", only_os_note="Intel NPU Acceleration Library runs on Windows only (its wheels)",
        retired="Intel NPU Acceleration Library is archived upstream: ranked after OpenVINO GenAI's NPU path"),
)

_REGISTRY: dict[str, EngineRow] = {row.id: row for row in _ROWS}
ROWS: Mapping[str, EngineRow] = MappingProxyType(_REGISTRY)  # read only; `register` adds to it


class UnknownEngine(KeyError):
    pass


def get(engine_id: str) -> EngineRow:
    try:
        return _REGISTRY[engine_id]
    except KeyError:
        raise UnknownEngine(f"unknown engine {engine_id!r}: one of {', '.join(_REGISTRY)}") from None


def ids() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def register(row: EngineRow) -> None:
    """Another engine (a plug-in, or a test's): the catalog may then name it, the policy ranks it, `load` runs it."""
    _REGISTRY[row.id] = row


def unregister(engine_id: str) -> None:
    _REGISTRY.pop(engine_id, None)


def display_name(engine_id: str) -> str:
    row = _REGISTRY.get(engine_id)
    return row.name if row else engine_id


def for_format(fmt: str) -> EngineRow:
    """The engine that reads a format (the first row that lists it)."""
    for row in _REGISTRY.values():
        if fmt in row.formats:
            return row
    raise UnknownEngine(f"no engine reads the {fmt!r} format")


def with_assist() -> tuple[str, ...]:
    """The engines that run a draft model (the catalog pairs drafts only with those)."""
    return tuple(row.id for row in _REGISTRY.values() if row.assisted)


def packages() -> dict[str, str]:
    """Every distribution that installs an engine -> where it installs at all ("" anywhere): what the probe reads."""
    out: dict[str, str] = {}
    for row in _REGISTRY.values():
        for dist in row.dists + tuple(d for ds in row.device_dists.values() for d in ds):
            out.setdefault(dist, row.dist_limits.get(dist, ""))
    return out


def resolve(ref: str, package: str = __package__) -> Any:
    """"module:attr" (relative to models.engines unless dotted) -> the object, imported now."""
    module, _, attr = ref.partition(":")
    name = module if "." in module else f"{package}.{module}"
    return getattr(importlib.import_module(name), attr)
