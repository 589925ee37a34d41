"""The README's "what runs where" table, generated from catalog.toml: python -m models.catalog_table"""

from __future__ import annotations

import json
from pathlib import Path

from .catalog import Artifact, load_catalog

GB = 1_000_000_000
# The paths the test suite runs for real, with the test that runs each (tests/models/test_verified_claims.py
# checks this file against tests/engines/test_engines.py both ways).
VERIFIED_FILE = Path(__file__).with_name("verified_paths.json")
FORMAT_NAMES = {"gguf": "GGUF", "openvino-ir": "IR", "onnx-genai": "ONNX", "hf-checkpoint": "checkpoint"}
DEVICE_NAMES = {"cpu": "CPU", "gpu": "Intel GPU", "npu": "Intel NPU", "dml": "DirectX 12 GPU (DirectML)"}
START, END = "<!-- catalog-table:start -->", "<!-- catalog-table:end -->"


def _size(a: Artifact) -> str:
    return ("~" if a.download_approx else "") + f"{a.download_bytes / GB:.2f} GB"


def _where(a: Artifact) -> str:
    if a.source == "hub":
        return f"`{a.repo_id}`" + (f" `{a.subfolder}`" if a.subfolder else "")
    return f"PyPI `{a.package}`"


def verified_paths(path: Path = VERIFIED_FILE) -> list[dict]:
    return json.loads(path.read_text())["paths"]


def _layout(a: Artifact) -> str:
    return "channel-wise" if a.group_size == -1 else ""


def _what(a: Artifact) -> str:
    """e.g. "INT4 channel-wise IR", "Q4_1 GGUF"."""
    return " ".join(w for w in (a.precision.upper(), _layout(a), FORMAT_NAMES.get(a.format, a.format)) if w)


def _device_claim(a: Artifact, d: str, paths: list[dict]) -> str:
    key = (a.engine, d, a.format, a.precision, _layout(a))
    ran = next((p for p in paths if (p["engine"], p["device"], p["format"], p["precision"], p["layout"]) == key),
               None)
    if ran:
        on = "this very file" if ran["model"] == a.id else "the Phi-3-architecture test model"
        return f"{DEVICE_NAMES[d]}: {_what(a)} ran here on {on}"
    if any(p["device"] == d for p in paths):  # the device is here, this build's kind never ran on it
        return f"{DEVICE_NAMES[d]}: not run here (the tests run no {_what(a)})"
    return f"{DEVICE_NAMES[d]}: not verified on hardware"


def devices_cell(a: Artifact, paths: list[dict] | None = None) -> str:
    paths = verified_paths() if paths is None else paths
    return "<br>".join(_device_claim(a, d, paths) for d in a.devices)


def markdown_table(catalog: tuple[Artifact, ...]) -> str:
    rows = ["| id | model | engine | devices | weights | download | memory to run | from |",
            "|---|---|---|---|---|---|---|---|"]
    paths = verified_paths()
    for a in catalog:
        rows.append(f"| `{a.id}` | {a.name} | {a.engine} | {devices_cell(a, paths)} | {a.quantization} | {_size(a)} | "
                    f"{a.run_memory_bytes / GB:.1f} GB | {_where(a)} |")
    return "\n".join(rows)


def readme_block(catalog: tuple[Artifact, ...]) -> str:
    return f"{START}\n{markdown_table(catalog)}\n{END}"


if __name__ == "__main__":
    print(readme_block(load_catalog()))
