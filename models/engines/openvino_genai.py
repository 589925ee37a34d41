"""OpenVINO GenAI adapter: LLMPipeline on CPU, GPU.N or NPU, for OpenVINO IR folders and GGUF files.

OpenVINO GenAI pushes text into a streamer callback; this is the one place where that push is
turned into a pull (a queue, a sentinel and one worker thread).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import EngineLoadError
from .base import Engine, EngineSpec, Message, Reply, ReplyStats, Sampling

_DONE = object()
DEFAULT_MIN_RESPONSE = 512


def pipeline_config(device: str, context_length: int, cache_dir: str | None,
                    min_response_len: int = DEFAULT_MIN_RESPONSE) -> dict:
    """The properties LLMPipeline gets for a device. Pure: tested for every device kind."""
    config: dict = {}
    if cache_dir:
        config["CACHE_DIR"] = cache_dir  # compiled blobs: the second start skips compilation
    kind = device.split(".", maxsplit=1)[0].upper()
    if kind == "NPU":
        # Static shapes: the prompt and the answer budget are fixed at compile time
        # (NPU guide: defaults 1024 + 128). Size them from the model's window.
        min_response = max(128, min(min_response_len, context_length // 4))
        config["MAX_PROMPT_LEN"] = context_length - min_response
        config["MIN_RESPONSE_LEN"] = min_response
        config["GENERATE_HINT"] = "BEST_PERF"  # slower first compile, cached by CACHE_DIR
        return config
    config["PERFORMANCE_HINT"] = "LATENCY"
    if kind == "CPU":
        # Correct before fast: on CPUs with BF16 (AVX512-BF16, AMX) OpenVINO computes in bf16 by
        # default, and the fp16 IR of the test model then answers nonsense; f32 matches PyTorch
        # token for token (shared/reference/conversion-and-runtime-notes.md). GPUs and NPUs keep
        # their f16 default.
        config["INFERENCE_PRECISION_HINT"] = "f32"
    return config


class OpenVinoGenAIEngine(Engine):
    name = "OpenVINO GenAI"

    def __init__(self, spec: EngineSpec):
        super().__init__(spec)
        import openvino_genai as ov_genai

        self._ov = ov_genai
        config = pipeline_config(spec.device, spec.context_length, spec.cache_dir,
                                 spec.options.get("min_response_len", DEFAULT_MIN_RESPONSE))
        try:
            self._pipe = self._open(Path(spec.path), config)
        except Exception as err:  # noqa: BLE001 - compile, driver and file errors all arrive as RuntimeError
            raise EngineLoadError(f"OpenVINO GenAI could not load {spec.label} on {spec.device}: {err}") from err
        self._tokenizer = self._pipe.get_tokenizer()
        self._warm_up()

    def _open(self, path: Path, config: dict):
        """LLMPipeline reads IR folders and GGUF files. With `gguf_keep_ir`, the first load of a GGUF
        also writes OpenVINO's IR of it beside the file, and later loads read that IR instead."""
        make = self._ov.LLMPipeline
        if path.suffix.lower() != ".gguf" or not self.spec.options.get("gguf_keep_ir"):
            return make(str(path), self.spec.device, **config)
        if (path.parent / "openvino_model.xml").is_file():
            try:
                return make(str(path.parent), self.spec.device, **config)
            except Exception:  # noqa: BLE001 - a damaged IR copy: rebuild it from the GGUF below
                for stale in path.parent.glob("openvino_*"):
                    stale.unlink()
        return make(str(path), self.spec.device, enable_save_ov_model=True, **config)

    def _warm_up(self) -> None:
        """The first generate() pays ~0.8 s of one-off cost; pay it at load, not on the first user."""
        config = self._pipe.get_generation_config()
        config.max_new_tokens = 2
        self._pipe.generate(self._ov.ChatHistory([{"role": "user", "content": "Hi"}]), config)

    def count_tokens(self, messages: list[Message]) -> int:
        prompt = self._tokenizer.apply_chat_template(self._ov.ChatHistory(messages), add_generation_prompt=True)
        return int(self._tokenizer.encode(prompt, add_special_tokens=False).input_ids.shape[1])

    def _config(self, sampling: Sampling):
        config = self._pipe.get_generation_config()  # keeps the model's own eos / stop ids
        config.max_new_tokens = sampling.max_new_tokens
        config.do_sample = not sampling.greedy
        if not sampling.greedy:
            config.temperature = sampling.temperature
            config.top_p = sampling.top_p
            config.top_k = sampling.top_k or 0
        config.repetition_penalty = sampling.repetition_penalty
        if sampling.seed is not None:
            config.rng_seed = sampling.seed
        if sampling.stop:
            config.stop_strings = set(sampling.stop)
            config.include_stop_str_in_output = False
        return config

    def _generate(self, messages: list[Message], sampling: Sampling, reply: Reply) -> Iterator[str]:
        chunks: queue.Queue = queue.Queue()
        cancel = self._cancel
        started = time.perf_counter()

        def streamer(text: str):
            chunks.put(text)
            return self._ov.StreamingStatus.STOP if cancel.is_set() else self._ov.StreamingStatus.RUNNING

        outcome: dict = {}

        def work() -> None:
            try:
                outcome["result"] = self._pipe.generate(self._ov.ChatHistory(messages), self._config(sampling),
                                                        streamer)
            except BaseException as err:  # noqa: BLE001 - re-raised in the consumer
                outcome["error"] = err
            finally:
                chunks.put(_DONE)

        worker = threading.Thread(target=work, name="openvino-genai-generate", daemon=True)
        worker.start()
        drained = False
        try:
            while (item := chunks.get()) is not _DONE:
                if item:
                    yield item
            drained = True
        finally:
            if not drained:
                cancel.set()  # a consumer that stops early (Stop button, closed tab) stops the engine
            worker.join()
        if "error" in outcome:
            raise outcome["error"]
        reply.stats = self._stats(outcome["result"], sampling, cancel.is_set(), time.perf_counter() - started)

    def _stats(self, result, sampling: Sampling, cancelled: bool, total: float) -> ReplyStats:
        metrics = result.perf_metrics
        generated = int(metrics.get_num_generated_tokens())
        if cancelled and generated < sampling.max_new_tokens:
            finish = "cancelled"
        elif generated >= sampling.max_new_tokens:
            finish = "length"
        else:
            finish = "stop"
        ttft = metrics.get_ttft().mean / 1000.0
        tpot = metrics.get_tpot().mean / 1000.0
        return ReplyStats(
            device=self.spec.device,
            model=self.spec.label,
            ttft_s=ttft,
            tokens_per_s=(1.0 / tpot) if tpot > 0 else 0.0,
            prompt_tokens=int(metrics.get_num_input_tokens()),
            generated_tokens=generated,
            finish_reason=finish,
            total_s=total,
        )

    def close(self) -> None:
        self._pipe = None
