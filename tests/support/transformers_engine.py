"""An engine that is not the product's, registered by a test: Hugging Face transformers on the CPU, reading a
Hugging Face checkpoint. It proves what adding an engine takes (an adapter, a registry row, catalog rows) and runs the
NPU library adapter's generation path (transformers' generate with its streamer) on a real model here."""

from __future__ import annotations

from models.engines.base import EngineSpec
from models.engines.npu_library import NpuLibraryEngine, streaming_hooks
from models.engines.registry import EngineRow
from models.errors import EngineLoadError

ROW = EngineRow(id="transformers-cpu", name="Transformers (CPU, a test's engine)", dists=("transformers",),
                formats=("hf-checkpoint",), devices=("cpu",),
                adapter="tests.support.transformers_engine:TransformersEngine")


class TransformersEngine(NpuLibraryEngine):
    name = ROW.name

    def __init__(self, spec: EngineSpec):  # the NPU adapter's generation, on transformers' own CPU model
        super(NpuLibraryEngine, self).__init__(spec)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            self._model = AutoModelForCausalLM.from_pretrained(spec.path, dtype=torch.float32).eval()
            self._tokenizer = AutoTokenizer.from_pretrained(spec.path)
        except (OSError, ValueError) as err:
            raise EngineLoadError(f"transformers could not load {spec.label}: {err}") from err
        self._torch = torch
        self._stopping, self._streamer_cls = streaming_hooks()
