"""The same greedy generation by four ways in, each timed by its caller the same way (`stats.Sample`):

- `raw`: the engine's own API and nothing of the app, on the adapter's own objects: OpenVINO GenAI's
  `LLMPipeline.generate` with a text streamer, or its `ContinuousBatchingPipeline` driven by
  `add_request`/`step` in the caller's thread; ONNX Runtime GenAI's `Generator` loop on its model.
- `seam`: `engine.stream()` -> `Reply` (models/engines/base.py): what every caller of the app goes through.
- `page`: `ChatService.respond` (webui/chat.py), the generator the page's Gradio handler iterates: the queue,
  the conversation snapshots, the figures line. Gradio's own transport to the browser is not included.
- `api`: the real API router (webui/api.py) served by uvicorn on loopback (webui/server.start, as the app
  serves it, without the page mounted), read by an HTTP streaming client (httpx) in this process:
  server-sent events, JSON per chunk, the event loop and the worker threads it hands the engine to.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from ..engines import Engine, Sampling
from .stats import Sample, sample

PATHS = ("raw", "seam", "page", "api")


def seam(engine: Engine, messages: list[dict], sampling: Sampling) -> Sample:
    asked = time.perf_counter()
    stamps: list[float] = []
    reply = engine.stream(messages, sampling)
    for _ in reply:
        stamps.append(time.perf_counter())
    return sample(asked, stamps, reply.stats.generated_tokens if reply.stats else None)


# -- raw ---------------------------------------------------------------------------------------------------
def raw_runner(engine: Engine) -> tuple[Callable[[list[dict], Sampling], Sample], Callable[[], None]]:
    """(run, close) for the engine's native API, for the adapter this engine is."""
    kind = type(engine).__name__
    if kind == "OpenVinoGenAIEngine":
        return _raw_llm_pipeline(engine), lambda: None
    if kind == "BatchingOpenVinoEngine":
        return _raw_continuous_batching(engine)
    if kind == "OnnxRuntimeGenAIEngine":
        return _raw_onnxruntime(engine), lambda: None
    raise NotImplementedError(f"no raw path for {kind}")


def _raw_llm_pipeline(engine):
    ov, pipe = engine._ov, engine._pipe  # noqa: SLF001 - read only: the adapter's own pipeline

    def run(messages: list[dict], sampling: Sampling) -> Sample:
        from ..engines.openvino_genai import generation_config

        asked = time.perf_counter()
        stamps: list[float] = []
        running = ov.StreamingStatus.RUNNING

        def streamer(text: str):
            if text:
                stamps.append(time.perf_counter())
            return running

        result = pipe.generate(ov.ChatHistory(messages), generation_config(pipe.get_generation_config(), sampling),
                               streamer)
        return sample(asked, stamps, int(result.perf_metrics.get_num_generated_tokens()))

    return run


def _raw_continuous_batching(engine):
    """The adapter's own ContinuousBatchingPipeline, driven here while its scheduler thread is idle: the
    benchmark asks nothing else meanwhile, and the scheduler touches the pipeline only for requests handed to
    it. (A second pipeline of the same folder would not do: in one process the second compiled model's steps
    run ~1.5x slower than the first's here.)"""
    from ..engines.openvino_genai import generation_config

    ov, pipe = engine._ov, engine._pipe  # noqa: SLF001
    tokenizer = pipe.get_tokenizer()
    ids = iter(range(1 << 40, 1 << 41))  # apart from the adapter's own request ids

    def run(messages: list[dict], sampling: Sampling) -> Sample:
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
        return sample(asked, stamps, len(generated))

    def close() -> None:
        nonlocal pipe
        pipe = None

    return run, close


def _raw_onnxruntime(engine):
    og, model, tokenizer = engine._og, engine._model, engine._tokenizer  # noqa: SLF001 - read only

    def run(messages: list[dict], sampling: Sampling) -> Sample:
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
        return sample(asked, stamps, count)

    return run


# -- page and API ------------------------------------------------------------------------------------------
class _Recording:
    """The engine as the chat service sees it, keeping each Reply for its token count."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self.last = None

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def stream(self, messages, sampling):
        self.last = self._engine.stream(messages, sampling)
        return self.last


def page_runner(engine: Engine) -> Callable[[list[dict], Sampling], Sample]:
    from webui.chat import ChatService, Conversation

    recording = _Recording(engine)
    service = ChatService(recording)

    def run(messages: list[dict], sampling: Sampling) -> Sample:
        (message,) = [m["content"] for m in messages if m["role"] == "user"]
        asked = time.perf_counter()
        stamps: list[float] = []
        shown = 0
        for update in service.respond("bench", Conversation(), message, sampling, system_prompt=""):
            turns = update.conversation.turns
            if turns and turns[-1].role == "assistant" and len(turns[-1].content) > shown:
                shown = len(turns[-1].content)
                stamps.append(time.perf_counter())
        reply = recording.last
        return sample(asked, stamps, reply.stats.generated_tokens if reply and reply.stats else None)

    return run


class ApiServer:
    """The app's API router alone, served on loopback by the app's own server code."""

    def __init__(self, engine: Engine, model_id: str):
        from fastapi import FastAPI

        from webui import api
        from webui.chat import ChatService
        from webui.server import free_port, start

        app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
        app.include_router(api.router(ChatService(engine), lambda: model_id, lambda: []))
        api.install_error_handlers(app)
        self._server = start(app, "127.0.0.1", free_port("127.0.0.1", 7990))
        self.url = self._server.url

    def runner(self) -> Callable[[list[dict], Sampling], Sample]:
        import httpx

        client = httpx.Client(base_url=self.url, timeout=600)

        def run(messages: list[dict], sampling: Sampling) -> Sample:
            body = {"messages": messages, "max_tokens": sampling.max_new_tokens, "temperature": 0, "stream": True,
                    "stream_options": {"include_usage": True}}
            asked = time.perf_counter()
            stamps: list[float] = []
            used = None
            with client.stream("POST", "/v1/chat/completions", json=body) as answer:
                answer.raise_for_status()
                for line in answer.iter_lines():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    chunk = json.loads(line[6:])
                    if "error" in chunk:
                        raise RuntimeError(chunk["error"].get("message", "the API answered an error"))
                    if chunk.get("usage"):
                        used = chunk["usage"]["completion_tokens"]
                    if any(c["delta"].get("content") for c in chunk.get("choices", [])):
                        stamps.append(time.perf_counter())
            return sample(asked, stamps, used)

        return run

    def close(self) -> None:
        self._server.close()
