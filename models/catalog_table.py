"""The README's "what runs where" table, generated from catalog.toml: python -m models.catalog_table"""

from __future__ import annotations

from .catalog import Artifact, load_catalog

GB = 1_000_000_000
# (engine, device kind) paths run for real on the project's CI machine (Linux x86_64, CPU only).
VERIFIED_HERE = {("openvino-genai", "cpu")}
DEVICE_NAMES = {"cpu": "CPU", "gpu": "Intel GPU", "npu": "Intel NPU", "dml": "DirectX 12 GPU (DirectML)"}
START, END = "<!-- catalog-table:start -->", "<!-- catalog-table:end -->"


def _size(a: Artifact) -> str:
    return ("~" if a.download_approx else "") + f"{a.download_bytes / GB:.2f} GB"


def _where(a: Artifact) -> str:
    if a.source == "hub":
        return f"`{a.repo_id}`" + (f" `{a.subfolder}`" if a.subfolder else "")
    return f"PyPI `{a.package}`"


def _devices(a: Artifact) -> str:
    return "<br>".join(
        f"{DEVICE_NAMES[d]}: {'verified here' if (a.engine, d) in VERIFIED_HERE else 'not verified on hardware'}"
        for d in a.devices)


def markdown_table(catalog: tuple[Artifact, ...]) -> str:
    rows = ["| id | model | engine | devices | weights | download | memory to run | from |",
            "|---|---|---|---|---|---|---|---|"]
    for a in catalog:
        rows.append(f"| `{a.id}` | {a.name} | {a.engine} | {_devices(a)} | {a.quantization} | {_size(a)} | "
                    f"{a.run_memory_bytes / GB:.1f} GB | {_where(a)} |")
    return "\n".join(rows)


def readme_block(catalog: tuple[Artifact, ...]) -> str:
    return f"{START}\n{markdown_table(catalog)}\n{END}"


if __name__ == "__main__":
    print(readme_block(load_catalog()))
