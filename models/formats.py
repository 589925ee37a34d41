"""Which engine a folder or file belongs to, told from the files it holds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .engines.registry import for_format
from .errors import ArtifactIncomplete

# format -> files it must hold; the engine that reads a format is the registry's (models/engines/registry.py)
REQUIRED: dict[str, tuple[str, ...]] = {
    "openvino-ir": ("openvino_model.xml", "openvino_model.bin", "openvino_tokenizer.xml", "openvino_detokenizer.xml"),
    "onnx-genai": ("genai_config.json",),
    "hf-checkpoint": ("config.json",),
}


DEFAULT_CONTEXT = 4096
MAX_LOCAL_CONTEXT = 8192  # a 128K window would need ~48 GB of KV cache for Phi-3-mini: cap it


@dataclass(frozen=True)
class LocalModel:
    path: Path
    format: str
    engine: str
    context_length: int = DEFAULT_CONTEXT


def _context_length(folder: Path, fmt: str) -> int:
    """The model's own window, from genai_config.json or config.json, capped for a PC."""
    import json

    try:
        if fmt == "onnx-genai":
            n = json.loads((folder / "genai_config.json").read_text())["model"]["context_length"]
        else:
            n = json.loads((folder / "config.json").read_text())["max_position_embeddings"]
        return min(int(n), MAX_LOCAL_CONTEXT)
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_CONTEXT


def missing_files(folder: Path, fmt: str) -> list[str]:
    missing = [name for name in REQUIRED[fmt] if not (folder / name).is_file()]
    if fmt == "onnx-genai" and not missing and not any(folder.glob("*.onnx")):
        missing.append("*.onnx")
    return missing


def detect(path: str | Path) -> LocalModel:
    """Name the format of a GGUF file or a model folder, or say what is missing."""
    p = Path(path).expanduser()
    if p.is_file():
        if p.suffix.lower() == ".gguf":
            return LocalModel(p, "gguf", for_format("gguf").id)
        raise ArtifactIncomplete(f"{p} is a file but not a .gguf model; give a GGUF file or a model folder")
    if not p.is_dir():
        raise ArtifactIncomplete(f"{p} does not exist")
    if (p / "openvino_model.xml").exists():
        fmt = "openvino-ir"
    elif (p / "genai_config.json").exists():
        fmt = "onnx-genai"
    elif (p / "config.json").exists():
        fmt = "hf-checkpoint"
    else:
        ggufs = sorted(p.glob("*.gguf"))
        if ggufs:
            return LocalModel(ggufs[0], "gguf", for_format("gguf").id)
        raise ArtifactIncomplete(
            f"{p} holds no model this app knows: expected openvino_model.xml (OpenVINO IR), "
            "genai_config.json (ONNX Runtime GenAI), config.json (Hugging Face checkpoint) or a .gguf file"
        )
    missing = missing_files(p, fmt)
    if missing:
        raise ArtifactIncomplete(f"{p} looks like a {fmt} folder but lacks: {', '.join(missing)}")
    return LocalModel(p, fmt, for_format(fmt).id, _context_length(p, fmt))
