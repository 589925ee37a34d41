"""The artifact catalog: models/catalog.toml read into frozen dataclasses."""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CATALOG_FILE = Path(__file__).with_name("catalog.toml")
ENGINES = ("openvino-genai", "onnxruntime-genai", "npu-acceleration-library")
DEVICE_KINDS = ("cpu", "gpu", "npu", "dml")
SOURCES = ("hub", "pypi-wheel", "local")


@dataclass(frozen=True)
class Artifact:
    id: str
    name: str
    family: str
    engine: str
    devices: tuple[str, ...]
    precision: str
    quantization: str
    format: str  # "gguf", "openvino-ir", "onnx-genai", "hf-checkpoint"
    source: str
    download_bytes: int
    run_memory_bytes: int
    context_length: int
    license: str
    chat_template: str = "model"
    end_tokens: tuple[str, ...] = ()
    repo_id: str = ""
    subfolder: str = ""
    revision: str = "main"
    package: str = ""
    file: str = ""
    path: str = ""  # for source = "local"
    download_approx: bool = False
    notes: str = ""
    # FP16 KV-cache bytes per token of window (layers x 2 x KV heads x head dim x 2 B); 0 = unknown.
    # With it the policy derives the weights (run_memory_bytes - kv x context_length) and can offer a
    # shorter window when the full one does not fit.
    kv_bytes_per_token: int = 0

    @property
    def embedded(self) -> bool:
        return self.source == "pypi-wheel"


class CatalogError(ValueError):
    pass


def parse(entries: list[dict]) -> tuple[Artifact, ...]:
    known = {f.name for f in fields(Artifact)}
    seen: set[str] = set()
    out = []
    for raw in entries:
        unknown = set(raw) - known
        if unknown:
            raise CatalogError(f"artifact {raw.get('id')!r}: unknown keys {sorted(unknown)}")
        data = dict(raw)
        data["devices"] = tuple(data.get("devices", ()))
        data["end_tokens"] = tuple(data.get("end_tokens", ()))
        art = Artifact(**data)
        if art.id in seen:
            raise CatalogError(f"artifact id {art.id!r} appears twice")
        if art.engine not in ENGINES:
            raise CatalogError(f"artifact {art.id!r}: unknown engine {art.engine!r}")
        if not art.devices or set(art.devices) - set(DEVICE_KINDS):
            raise CatalogError(f"artifact {art.id!r}: devices must be among {DEVICE_KINDS}")
        if art.source not in SOURCES:
            raise CatalogError(f"artifact {art.id!r}: unknown source {art.source!r}")
        if art.source == "hub" and not art.repo_id:
            raise CatalogError(f"artifact {art.id!r}: a hub artifact needs repo_id")
        if art.kv_bytes_per_token < 0 or art.kv_bytes_per_token * art.context_length >= art.run_memory_bytes:
            raise CatalogError(f"artifact {art.id!r}: the KV cache of its window must be part of run_memory_bytes")
        seen.add(art.id)
        out.append(art)
    return tuple(out)


def load_catalog(path: Path = CATALOG_FILE) -> tuple[Artifact, ...]:
    with open(path, "rb") as fh:
        return parse(tomllib.load(fh).get("artifact", []))


def by_id(catalog: tuple[Artifact, ...], artifact_id: str) -> Artifact | None:
    return next((a for a in catalog if a.id == artifact_id), None)


def embedded_default(catalog: tuple[Artifact, ...]) -> Artifact:
    return next(a for a in catalog if a.embedded)
