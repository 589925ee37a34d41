"""Intel NPU Acceleration Library adapter (Windows only; archived upstream: OpenVINO GenAI's NPU path ranks first).

The cookbook's API exactly: NPUModelForCausalLM.from_pretrained(model_id, use_cache=True,
config=CompilerConfig(dtype=int4|int8|float16), attn_implementation="sdpa"), with a transformers
TextIteratorStreamer. The library and torch are imported only when this engine loads.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from ..errors import EngineLoadError
from .base import Engine, EngineSpec, Message, Reply, ReplyStats, StopFilter, finish_reason, pushed, raw_text
from .sampling import Sampling

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


def chat_ids(tokenizer, messages: list[Message]):
    """transformers 5 returns a BatchEncoding from apply_chat_template(..., return_tensors="pt") unless told
    return_dict=False; 4.x returns the tensor either way. Pure on the tokenizer: tested here."""
    raw = raw_text(messages)
    if raw is not None:  # a raw prompt is continued as it is (with the tokenizer's BOS)
        return tokenizer(raw, return_tensors="pt").input_ids
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                         return_dict=False)


def streaming_hooks():
    """(stopping criteria for a cancel event, a streamer class pushing finished text to `emit`) on transformers' own
    StoppingCriteria and TextStreamer (its incremental detokeniser). Imported when called."""
    from transformers import StoppingCriteria, StoppingCriteriaList, TextStreamer

    class Cancelled(StoppingCriteria):
        """Stops generate() once this request's own cancel event is set."""

        def __init__(self, cancel):
            self._event = cancel

        def __call__(self, *_args, **_kwargs) -> bool:
            return self._event.is_set()

    class Pushing(TextStreamer):
        def __init__(self, tokenizer, emit):
            super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
            self._emit = emit

        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            if text:
                self._emit(text)

    return (lambda cancel: StoppingCriteriaList([Cancelled(cancel)])), Pushing


class NpuLibraryEngine(Engine):  # pragma: no cover - needs Windows, an Intel NPU and the library's wheels
    name = "Intel NPU Acceleration Library"

    def __init__(self, spec: EngineSpec):
        super().__init__(spec)
        try:
            import intel_npu_acceleration_library as npu_lib
            import torch
            from intel_npu_acceleration_library.compiler import CompilerConfig
            from transformers import AutoTokenizer
        except ImportError as err:
            raise EngineLoadError("the Intel NPU Acceleration Library is not installed (Windows only): "
                                  f"{err}", scope="device") from err
        model_id, kwargs = load_arguments(spec)
        dtype = {"int4": npu_lib.int4, "int8": npu_lib.int8, "float16": torch.float16}[kwargs.pop("dtype")]
        try:
            self._model = npu_lib.NPUModelForCausalLM.from_pretrained(
                model_id, config=CompilerConfig(dtype=dtype), **kwargs).eval()
            self._tokenizer = AutoTokenizer.from_pretrained(model_id)
        except Exception as err:  # noqa: BLE001 - compile and driver errors
            raise EngineLoadError(f"the NPU library could not compile {spec.label}: {err}") from err
        self._torch = torch
        self._stopping, self._streamer_cls = streaming_hooks()

    def count_tokens(self, messages: list[Message]) -> int:
        return int(chat_ids(self._tokenizer, messages).shape[-1])

    def _generate(self, messages: list[Message], sampling: Sampling, reply: Reply) -> Iterator[str]:
        ids = chat_ids(self._tokenizer, messages)
        stops = StopFilter(sampling.stop)
        started = time.perf_counter()
        first: list[float] = []
        cancel = reply._cancel

        def run(emit):
            def shown(text: str) -> bool:
                first or first.append(time.perf_counter() - started)
                emit(stops.feed(text))
                if stops.hit:
                    cancel.set()  # the stop string ends the generation too
                return cancel.is_set()

            if sampling.seed is not None:
                self._torch.manual_seed(sampling.seed)
            out = self._model.generate(ids, streamer=self._streamer_cls(self._tokenizer, shown),
                                       stopping_criteria=self._stopping(cancel), **generate_arguments(sampling))
            emit(stops.flush())
            return out

        out = yield from pushed(run, cancel, "npu-library-generate")
        total = time.perf_counter() - started
        n = int(out.shape[-1] - ids.shape[-1])
        ttft = first[0] if first else 0.0
        cancelled = cancel.is_set() and not stops.hit
        reply.stats = ReplyStats(self.spec.device, self.spec.label, ttft,
                                 (n - 1) / (total - ttft) if ttft and n > 1 else 0.0,
                                 int(ids.shape[-1]), n, finish_reason(cancelled, n, sampling), total)
