"""Every engine the product runs here, as the engine tests open them: the embedded GGUF (fast tests) and the
Phi-3-architecture test model's exports (slow: they need the conversion tools)."""

from __future__ import annotations

import pytest

from models.engines import EngineSpec, load

ENGINES = {
    # id: (engine, where, device) — "gguf" is the embedded model; the rest are test-model exports
    "ov-gguf": ("openvino-genai", "gguf", "CPU"),
    "ov-int4": ("openvino-genai", "openvino-int4", "CPU"),
    "ov-fp16": ("openvino-genai", "openvino-fp16", "CPU"),
    "ov-npu-ir": ("openvino-genai", "openvino-npu", "CPU"),
    "ort-int4": ("onnxruntime-genai", "onnx-int4-cpu", "cpu"),
}


def engine_params():
    """The embedded GGUF runs in the fast tests; the test-model exports need the conversion tools (slow)."""
    return [pytest.param(k, marks=() if where == "gguf" else pytest.mark.slow) for k, (_, where, _) in ENGINES.items()]


def open_engine(request, embedded_gguf, app_home, context_length: int = 8192):
    """The engine named by request.param, on its real model; the caller closes it."""
    kind, where, device = ENGINES[request.param]
    path = embedded_gguf if where == "gguf" else request.getfixturevalue("phi3_models").exports[where]
    return load(EngineSpec(path=str(path), engine=kind, device=device, label=request.param,
                           context_length=context_length,
                           cache_dir=str(app_home / "compiled" / f"tests-{context_length}" / request.param),
                           options={"gguf_keep_ir": where == "gguf"}))
