"""The same greedy generation by four ways in, each timed by its caller the same way (`stats.Sample`):

- `raw`: the engine's own API and nothing of the app, on the adapter's own objects: OpenVINO GenAI's
  `LLMPipeline.generate` with a text streamer, or its `ContinuousBatchingPipeline` driven by
  `add_request`/`step` in the caller's thread; ONNX Runtime GenAI's `Generator` loop on its model.
- `seam`: `engine.stream()` -> `Reply` (models/engines/base.py): what every caller of the app goes through.
- `page`: `respond` (webui/chat.py) over the serving queue, the generator the page's Gradio handler iterates: the queue,
  the conversation snapshots, the figures line. Gradio's own transport to the browser is not included.
- `api`: the real API router (webui/api.py) served by uvicorn on loopback (webui/server.start, as the app
  serves it, without the page mounted), read by an HTTP streaming client (httpx) in this process:
  server-sent events, JSON per chunk, the event loop and the worker threads it hands the engine to.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from models.engines import Engine, Sampling, registry

from .stats import Sample, sample

PATHS = ("raw", "seam", "page", "api")


def seam(engine: Engine, messages: list[dict], sampling: Sampling) -> Sample:
    asked = time.perf_counter()
    stamps: list[float] = []
    reply = engine.stream(messages, sampling)
    for _ in reply:
        stamps.append(time.perf_counter())
    return sample(asked, stamps, reply.stats.generated_tokens if reply.stats else None)


def raw_runner(engine: Engine) -> tuple[Callable[[list[dict], Sampling], Sample], Callable[[], None]]:
    """(run, close) on the engine's native API, through its registry row's `raw_bench` hook."""
    hook = registry.get(engine.spec.engine).raw_bench
    if not hook:
        raise NotImplementedError(f"no raw path for {engine.name}")
    run_timed, close = registry.resolve(hook)(engine)

    def run(messages: list[dict], sampling: Sampling) -> Sample:
        return sample(*run_timed(messages, sampling))

    return run, close


# -- page and API ------------------------------------------------------------------------------------------
class _Recording:
    """The engine as the chat service sees it, keeping each Reply for its token count."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self.last = None

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def stream(self, messages, sampling, admitted: bool = False):
        self.last = self._engine.stream(messages, sampling, admitted)
        return self.last


def page_runner(engine: Engine) -> Callable[[list[dict], Sampling], Sample]:
    from app.serving import ServingQueue
    from webui.chat import Conversation, respond

    recording = _Recording(engine)
    service = ServingQueue(recording)

    def run(messages: list[dict], sampling: Sampling) -> Sample:
        (message,) = [m["content"] for m in messages if m["role"] == "user"]
        asked = time.perf_counter()
        stamps: list[float] = []
        shown = 0
        for update in respond(service, "bench", Conversation(), message, sampling, system_prompt=""):
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

        from app.serving import ServingQueue
        from webui import api
        from webui.server import free_port, start

        app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
        app.include_router(api.router(ServingQueue(engine), lambda: model_id, lambda: []))
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
