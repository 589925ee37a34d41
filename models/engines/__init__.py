"""Engine adapters behind one streaming seam (see base.py)."""

from __future__ import annotations

from .base import Engine, EngineSpec, Message, Reply, ReplyStats
from .sampling import JsonSchema, ResponseFormatError, Sampling


def load(spec: EngineSpec) -> Engine:
    """Load an engine; heavy packages are imported only for the engine asked for."""
    if spec.engine == "openvino-genai":
        kind = spec.device.split(".", maxsplit=1)[0].upper()
        if kind in ("CPU", "GPU") and int(spec.options.get("parallel", 1)) > 1:  # the NPU: static shapes, batch 1
            from .openvino_batching import BatchingOpenVinoEngine

            return BatchingOpenVinoEngine(spec)
        from .openvino_genai import OpenVinoGenAIEngine

        return OpenVinoGenAIEngine(spec)
    if spec.engine == "onnxruntime-genai":
        from .onnxruntime_genai import OnnxRuntimeGenAIEngine

        return OnnxRuntimeGenAIEngine(spec)
    if spec.engine == "npu-acceleration-library":
        from .npu_library import NpuLibraryEngine

        return NpuLibraryEngine(spec)
    from ..errors import EngineLoadError

    raise EngineLoadError(f"the {spec.engine} engine is not available in this version yet")


__all__ = ["Engine", "EngineSpec", "JsonSchema", "Message", "Reply", "ReplyStats", "ResponseFormatError", "Sampling",
           "load"]
