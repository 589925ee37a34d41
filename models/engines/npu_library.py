"""Intel NPU Acceleration Library adapter (Windows only; archived upstream: OpenVINO GenAI's NPU path ranks first).

The cookbook's API exactly: NPUModelForCausalLM.from_pretrained(model_id, use_cache=True,
config=CompilerConfig(dtype=int4|int8|float16), attn_implementation="sdpa"), with a transformers
TextIteratorStreamer. The library and torch are imported only when this engine loads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from ..errors import EngineLoadError
from .base import Engine, EngineSpec, Message, Reply, ReplyStats, Sampling

DTYPES = ("int4", "int8", "float16")


def load_arguments(spec: EngineSpec) -> tuple[str, dict]:
    """(model id or folder, keyword arguments) for from_pretrained; `config` is named by its dtype here
    and built from the library's CompilerConfig at load time. Pure: tested off Windows."""
    dtype = spec.precision if spec.precision in DTYPES else "int4"
    return spec.path, {"use_cache": True, "dtype": dtype, "attn_implementation": "sdpa"}


def generate_arguments(sampling: Sampling) -> dict:
    """fp16 `-inf` with multinomial sampling broke Phi-3 on the NPU (upstream issue #48): greedy unless asked."""
    args = {"max_new_tokens": sampling.max_new_tokens, "do_sample": not sampling.greedy,
            "repetition_penalty": sampling.repetition_penalty}
    if not sampling.greedy:
        args.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k or 50)
    return args


class NpuLibraryEngine(Engine):  # pragma: no cover - needs Windows, an Intel NPU and the library's wheels
    name = "Intel NPU Acceleration Library"

    def __init__(self, spec: EngineSpec):
        super().__init__(spec)
        try:
            import intel_npu_acceleration_library as npu_lib
            import torch
            from intel_npu_acceleration_library.compiler import CompilerConfig
            from transformers import AutoTokenizer, StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer
        except ImportError as err:
            raise EngineLoadError("the Intel NPU Acceleration Library is not installed (Windows only): "
                                  f"{err}") from err
        model_id, kwargs = load_arguments(spec)
        dtype = {"int4": npu_lib.int4, "int8": npu_lib.int8, "float16": torch.float16}[kwargs.pop("dtype")]
        try:
            self._model = npu_lib.NPUModelForCausalLM.from_pretrained(
                model_id, config=CompilerConfig(dtype=dtype), **kwargs).eval()
            self._tokenizer = AutoTokenizer.from_pretrained(model_id)
        except Exception as err:  # noqa: BLE001 - compile and driver errors
            raise EngineLoadError(f"the NPU library could not compile {spec.label}: {err}") from err
        self._streamer_cls = TextIteratorStreamer
        cancel = self._cancel

        class Cancelled(StoppingCriteria):
            def __call__(self, *_args, **_kwargs) -> bool:
                return cancel.is_set()

        self._stopping = StoppingCriteriaList([Cancelled()])

    def _ids(self, messages: list[Message]):
        return self._tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")

    def count_tokens(self, messages: list[Message]) -> int:
        return int(self._ids(messages).shape[-1])

    def _generate(self, messages: list[Message], sampling: Sampling, reply: Reply) -> Iterator[str]:
        ids = self._ids(messages)
        streamer = self._streamer_cls(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
        out: dict = {}
        started = time.perf_counter()

        def work() -> None:
            out["ids"] = self._model.generate(ids, streamer=streamer, stopping_criteria=self._stopping,
                                              **generate_arguments(sampling))

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        first = None
        drained = False
        try:
            for piece in streamer:
                first = first or time.perf_counter() - started
                yield piece
            drained = True
        finally:
            if not drained:
                self._cancel.set()  # the consumer stopped early: stop the model too
            worker.join()
        total = time.perf_counter() - started
        n = int(out["ids"].shape[-1] - ids.shape[-1]) if "ids" in out else 0
        finish = "cancelled" if self._cancel.is_set() else ("length" if n >= sampling.max_new_tokens else "stop")
        reply.stats = ReplyStats(self.spec.device, self.spec.label, first or 0.0,
                                 (n - 1) / (total - first) if first and n > 1 else 0.0,
                                 int(ids.shape[-1]), n, finish, total)
