"""POST /v1/completions: OpenAI's legacy text completions (Continue's autocomplete, LiteLLM's `text_completion`). The
model continues the prompt as sent, with no chat template around it (models/engines/base.py `raw_prompt`). Same
queue, credentials, limits and error shape as chat completions (webui/api_common.py)."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import Field

from app.serving import Event, ServingQueue
from models.engines.base import raw_prompt
from models.errors import AppError, check_text

from .api_common import answer_events, answers_whole, app_error, finish, frame, total_usage, usage
from .api_request import ApiError, Asked
from .chat import model_defaults


class CompletionRequest(Asked):
    """OpenAI's completions request: one prompt (a string, or a list of one string); token-id prompts, `suffix`
    (fill-in-the-middle), `logprobs` and `best_of` > 1 are refused by name. `echo` puts the prompt before the text."""

    prompt: str | list[str] | list[int] | list[list[int]]
    echo: bool | None = False
    suffix: str | None = None
    logprobs: int | None = Field(default=None, ge=0, le=5)
    best_of: int | None = Field(default=None, ge=1)

    def text(self) -> str:
        prompt = self.prompt
        if isinstance(prompt, list):
            if len(prompt) != 1 or not isinstance(prompt[0], str):
                raise ApiError(400, "prompt: one prompt per request here, as text (a list of one string works; token "
                               "ids do not)", param="prompt")
            prompt = prompt[0]
        if not prompt:
            raise ApiError(400, "prompt: the prompt is empty", param="prompt")
        try:
            check_text("the prompt", prompt, "prompt")
        except AppError as err:
            raise app_error(err) from None
        return prompt

    def refusals(self) -> None:
        super().refusals()
        if self.suffix:
            raise ApiError(400, "suffix: fill-in-the-middle is not done here; send the text before the cursor as the "
                           "prompt", param="suffix")
        if self.logprobs:
            raise ApiError(400, "logprobs: log-probabilities are not reported here; ask without logprobs",
                           param="logprobs")
        if self.best_of not in (None, 1):
            raise ApiError(400, "best_of: one answer per request here", param="best_of")


def add_routes(api: APIRouter, service: ServingQueue, running_model: Callable[[], str],
               check_model: Callable[[str | None], None]) -> None:
    """POST /v1/completions on `api` (the /v1 router, with its credentials). `check_model` raises the 404 for a
    model that is not the one running."""

    @api.post("/completions")
    async def completions(req: CompletionRequest, request: Request):
        try:
            req.refusals()
            check_model(req.model)
            prompt = req.text()
            engine = service.engine
            try:
                sampling = req.sampling(model_defaults(engine), engine.budget.window if engine else 4096)
            except AppError as err:
                raise app_error(err) from None
            completion_id, model = f"cmpl-{secrets.token_hex(12)}", running_model()
            echo = prompt if req.echo else ""
            if req.stream:
                include_usage = bool(req.stream_options and req.stream_options.include_usage)
                events = await answer_events(request, service, raw_prompt(prompt), sampling)
                return StreamingResponse(_sse(events, echo, completion_id, model, include_usage),
                                         media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
            whole = await answers_whole(request, service, raw_prompt(prompt), req.samplings(sampling))
        except ApiError as err:
            return JSONResponse(err.body(), status_code=err.status, headers=err.headers)
        return {"id": completion_id, "object": "text_completion", "created": int(time.time()), "model": model,
                "choices": [{"index": i, "text": echo + text, "finish_reason": finish(reply), "logprobs": None}
                            for i, (text, reply) in enumerate(whole)],
                "usage": total_usage([reply for _, reply in whole])}


async def _sse(events: AsyncIterator[Event], echo: str, completion_id: str, model: str,
               include_usage: bool) -> AsyncIterator[bytes]:
    created = int(time.time())

    def chunk(text: str, finish_reason: str | None = None) -> bytes:
        return frame({"id": completion_id, "object": "text_completion", "created": created, "model": model,
                      "choices": [{"index": 0, "text": text, "finish_reason": finish_reason, "logprobs": None}]})

    if echo:
        yield chunk(echo)
    try:
        async for event in events:
            if event.reply is not None:
                yield chunk("", finish(event.reply))
                if include_usage:
                    yield frame({"id": completion_id, "object": "text_completion", "created": created,
                                 "model": model, "choices": [], "usage": usage(event.reply)})
            elif event.delta:
                yield chunk(event.delta)
    except AppError as err:  # the engine failed mid-answer: an error frame, then the end
        yield frame(app_error(err).body())
    yield b"data: [DONE]\n\n"
