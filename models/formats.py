"""Which engine a folder or file belongs to, told from the files it holds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import ArtifactIncomplete

# format -> (engine, files it must hold)
REQUIRED: dict[str, tuple[str, tuple[str, ...]]] = {
    "openvino-ir": ("openvino-genai", ("openvino_model.xml", "openvino_model.bin",
                                       "openvino_tokenizer.xml", "openvino_detokenizer.xml")),
    "onnx-genai": ("onnxruntime-genai", ("genai_config.json",)),
    "hf-checkpoint": ("npu-acceleration-library", ("config.json",)),
}


@dataclass(frozen=True)
class LocalModel:
    path: Path
    format: str
    engine: str


def missing_files(folder: Path, fmt: str) -> list[str]:
    missing = [name for name in REQUIRED[fmt][1] if not (folder / name).is_file()]
    if fmt == "onnx-genai" and not missing and not any(folder.glob("*.onnx")):
        missing.append("*.onnx")
    return missing


def detect(path: str | Path) -> LocalModel:
    """Name the format of a GGUF file or a model folder, or say what is missing."""
    p = Path(path).expanduser()
    if p.is_file():
        if p.suffix.lower() == ".gguf":
            return LocalModel(p, "gguf", "openvino-genai")
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
            return LocalModel(ggufs[0], "gguf", "openvino-genai")
        raise ArtifactIncomplete(
            f"{p} holds no model this app knows: expected openvino_model.xml (OpenVINO IR), "
            "genai_config.json (ONNX Runtime GenAI), config.json (Hugging Face checkpoint) or a .gguf file"
        )
    missing = missing_files(p, fmt)
    if missing:
        raise ArtifactIncomplete(f"{p} looks like a {fmt} folder but lacks: {', '.join(missing)}")
    return LocalModel(p, fmt, REQUIRED[fmt][0])
