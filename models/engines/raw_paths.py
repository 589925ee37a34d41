"""The benchmark's native-API paths, one per engine (the registry's `raw_bench` and `kv_value` hooks): the same
greedy generation on the engine's own API and nothing of the app, on the adapter's own objects. Each `run`
returns (asked at, a timestamp per piece of text, generated tokens); bench/paths.py turns that into figures.
Here, inside the engines package, is the one place outside an adapter that reads its private objects.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from .base import Engine
from .sampling import Sampling

Timed = tuple[float, list[float], int]  # (asked at, a timestamp per piece of text shown, tokens generated)


def openvino(engine: Engine) -> tuple[Callable[[list[dict], Sampling], Timed], Callable[[], None]]:
    """(run, close) on OpenVINO GenAI's own API: the LLMPipeline, or the ContinuousBatchingPipeline of the batching
    adapter driven by `add_request`/`step` in the caller's thread."""
    from .openvino_batching import BatchingOpenVinoEngine

    if isinstance(engine, BatchingOpenVinoEngine):
        return _raw_continuous_batching(engine)
    return _raw_llm_pipeline(engine), lambda: None


def onnxruntime(engine: Engine) -> tuple[Callable[[list[dict], Sampling], Timed], Callable[[], None]]:
    """(run, close) on ONNX Runtime GenAI's own Generator loop."""
    return _raw_onnxruntime(engine), lambda: None


def openvino_kv_value(device_id: str) -> tuple[float, str]:
    """Bytes per cached key/value element as OpenVINO keeps them on this device, and what that is."""
    device = device_id.split(".", maxsplit=1)[0]
    try:
        import openvino

        precision = str(openvino.Core().get_property(device, "KV_CACHE_PRECISION")).lower()
    except Exception:  # noqa: BLE001 - a device without the property: f16
        precision = "f16"
    if "u8" in precision or "uint8" in precision or "i8" in precision:
        return 1.0, "u8 (OpenVINO's CPU default; per-group scales not counted)"
    if "f32" in precision or "float32" in precision:
        return 4.0, "f32"
    return 2.0, "f16"


def onnxruntime_kv_value(device_id: str) -> tuple[float, str]:
    return (2.0, "f16") if device_id.startswith("dml") else (4.0, "f32 (the CPU build's inputs)")


def _raw_llm_pipeline(engine):
    ov, pipe = engine._ov, engine._pipe  # noqa: SLF001 - read only: the adapter's own pipeline

    def run(messages: list[dict], sampling: Sampling) -> Timed:
        from .openvino_genai import generation_config

        asked = time.perf_counter()
        stamps: list[float] = []
        running = ov.StreamingStatus.RUNNING

        def streamer(text: str):
            if text:
                stamps.append(time.perf_counter())
            return running

        result = pipe.generate(ov.ChatHistory(messages), generation_config(pipe.get_generation_config(), sampling),
                               streamer)
        return asked, stamps, int(result.perf_metrics.get_num_generated_tokens())

    return run


def _raw_continuous_batching(engine):
    """The adapter's own ContinuousBatchingPipeline, driven here while its scheduler thread is idle: the
    benchmark asks nothing else meanwhile, and the scheduler touches the pipeline only for requests handed to
    it. (A second pipeline of the same folder would not do: in one process the second compiled model's steps
    run ~1.5x slower than the first's here.)"""
    from .openvino_genai import generation_config

    ov, pipe = engine._ov, engine._pipe  # noqa: SLF001
    tokenizer = pipe.get_tokenizer()
    ids = iter(range(1 << 40, 1 << 41))  # apart from the adapter's own request ids

    def run(messages: list[dict], sampling: Sampling) -> Timed:
        asked = time.perf_counter()
        prompt = tokenizer.apply_chat_template(ov.ChatHistory(messages), add_generation_prompt=True)
        tokens = tokenizer.encode(prompt, add_special_tokens=False).input_ids
        handle = pipe.add_request(next(ids), tokens, generation_config(pipe.get_config(), sampling))
        stamps: list[float] = []
        generated: list[int] = []
        shown = ""
        while pipe.has_non_finished_requests() or handle.can_read():
            if pipe.has_non_finished_requests():
                pipe.step()
            while handle.can_read():
                for output in handle.read().values():
                    generated += list(output.generated_ids)
                    text = tokenizer.decode(generated, skip_special_tokens=True)
                    if len(text) > len(shown) and not text.endswith("\ufffd"):
                        shown = text
                        stamps.append(time.perf_counter())
        return asked, stamps, len(generated)

    def close() -> None:
        nonlocal pipe
        pipe = None

    return run, close


def _raw_onnxruntime(engine):
    og, model, tokenizer = engine._og, engine._model, engine._tokenizer  # noqa: SLF001 - read only

    def run(messages: list[dict], sampling: Sampling) -> Timed:
        asked = time.perf_counter()
        ids = tokenizer.encode(tokenizer.apply_chat_template(json.dumps(messages), add_generation_prompt=True))
        params = og.GeneratorParams(model)
        params.set_search_options(max_length=len(ids) + sampling.max_new_tokens, do_sample=False,
                                  repetition_penalty=sampling.repetition_penalty)
        generator = og.Generator(model, params)
        stream = tokenizer.create_stream()
        stamps: list[float] = []
        count = 0
        generator.append_tokens(ids)
        while not generator.is_done():
            generator.generate_next_token()
            count += 1
            if stream.decode(generator.get_next_tokens()[0]):
                stamps.append(time.perf_counter())
        del generator
        return asked, stamps, count

    return run
