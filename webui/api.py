"""An OpenAI-compatible API on the page's own server: GET /v1/models, GET /v1/models/{id}, POST /v1/chat/completions
here; POST /v1/completions (webui/api_completions.py) and POST /v1/responses (webui/api_responses.py) beside it, with
what they share in webui/api_common.py and the request bodies in webui/api_request.py.

What a request leaves out comes from the model's own defaults, the same the page starts from (`model_defaults`:
the model's generation config, else greedy); without `max_tokens` an answer may run to the end of the window. The
running model answers under its catalog id and under `ALIAS`, which always names the model running now (a client
configured with it keeps working after a switch on the page); another id is a 404 that says how to switch.

Same engine, same queue and same credentials as the page (app/serving.py ServingQueue). `response_format`
(`text`, `json_object`, `json_schema`) and `tools` hold the answer in the engine itself (structured output); an
engine without it, or a schema its grammar compiler rejects, is a 400 on `response_format` (`tools`). Request bodies
are typed models with bounds, so bad input is a 400 before anything runs; every error leaves in
OpenAI's shape {"error": {"message", "type", "param", "code"}}; streaming is server-sent events ending
with `data: [DONE]`. A client that goes away stops its generation, or leaves the queue.
"""
from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError

from app.serving import Event, ServingQueue
from models.engines import Reply
from models.engines.sampling import ResponseFormatError
from models.errors import AppError
from models.tool_calls import Answer, ToolUse

from . import api_completions, api_responses
from .api_common import answer_events, answers_whole, app_error, finish, frame, total_usage, usage
from .api_request import ApiError, ChatRequest
from .chat import model_defaults

OWNED_BY = "phi3-aipc"
ALIAS = "phi3-aipc"  # always the model running now, whichever it is


def _validation_message(err: ValidationError | Any) -> tuple[str, str | None]:
    errors = err.errors()
    first = errors[0] if errors else {}
    loc = [str(x) for x in first.get("loc", ()) if x != "body"]
    param = ".".join(loc) or None
    if loc and loc[0] == "response_format":  # one param for the whole of it; the message names the field
        what = first.get("msg", "invalid").removeprefix("Value error, ")
        if first.get("type") == "missing":
            return f"{param.replace('schema_', 'schema')} is required", "response_format"
        return f"{param.replace('schema_', 'schema')}: {what}", "response_format"
    if first.get("type") == "json_invalid":
        return "the request body is not valid JSON", None
    if first.get("type") in ("model_attributes_type", "dict_type") and not loc:
        return "the request body must be a JSON object", None
    if first.get("type") == "missing" and param:
        return f"{param} is required", param
    what = first.get("msg", "invalid request")
    return (f"{param}: {what}" if param else what), param


def model_not_found(model_id: str, running: str, catalog: list[str]) -> ApiError:
    """The 404 for a model that is not the one running: what to ask for instead, and how to switch to a model of the
    catalog (the API never switches)."""
    others = [m for m in catalog if m != running]
    where = (f" It is one this PC could run: switch to it on the page (Why this model), or start the app with "
             f"--model {model_id}.") if model_id in others else ""
    shown = model_id if len(model_id) <= 80 else model_id[:80] + "…"  # an id is echoed, never a whole long one
    return ApiError(404, f"model {shown!r} is not the one running here: ask for {running!r}, or for "
                    f"{ALIAS!r} (always the model running now), or leave 'model' out.{where}",
                    param="model", code="model_not_found")


def router(service: ServingQueue, running_model: Callable[[], str], other_models: Callable[[], list[str]],
           dependencies: list | None = None, tool_format: Callable[[], str] = lambda: "json"):
    """The /v1 routes. `running_model()` is the id of the model being served (it answers under that id and under
    ALIAS); `other_models()` the ids it could switch to (named in a 404, never switched to from the API);
    `tool_format()` how the running model calls tools (models/tool_calls.py)."""

    api = APIRouter(prefix="/v1", dependencies=dependencies or [])
    started = int(time.time())

    def error_response(err: ApiError) -> JSONResponse:
        return JSONResponse(err.body(), status_code=err.status, headers=err.headers)

    def model_card(model_id: str) -> dict:
        """OpenAI's model object, and how this model calls tools: "native" (its own format, free to choose under
        `auto`) or "grammar" (every answer to a request with tools held to a call or a plain answer)."""
        return {"id": model_id, "object": "model", "created": started, "owned_by": OWNED_BY,
                "tool_calls": "grammar" if tool_format() == "json" else "native"}

    def not_running(model_id: str) -> ApiError:
        return model_not_found(model_id, running_model(), other_models())

    @api.get("/models")
    def list_models() -> dict:
        """The models that answer here: the running one, and ALIAS for it."""
        return {"object": "list", "data": [model_card(running_model()), model_card(ALIAS)]}

    @api.get("/models/{model_id:path}")
    def retrieve_model(model_id: str):
        if model_id in (running_model(), ALIAS):
            return model_card(model_id)
        return error_response(not_running(model_id))

    def check_model(model_id: str | None) -> None:
        if model_id and model_id not in (running_model(), ALIAS):
            raise not_running(model_id)

    _add_chat_route(api, service, running_model, check_model, tool_format)
    api_completions.add_routes(api, service, running_model, check_model)
    api_responses.add_routes(api, service, running_model, check_model, tool_format)

    other = ["GET", "PUT", "PATCH", "DELETE"]

    @api.api_route("/chat/completions", methods=other, include_in_schema=False)
    @api.api_route("/completions", methods=other, include_in_schema=False)
    @api.api_route("/responses", methods=other, include_in_schema=False)
    @api.api_route("/models", methods=["POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    @api.api_route("/models/{model_id:path}", methods=["POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def wrong_method(request: Request):
        return error_response(ApiError(405, f"{request.method} is not allowed on {request.url.path}",
                                       code="method_not_allowed"))

    @api.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def unknown(rest: str):  # the page is mounted at "/": without this, Gradio would answer for /v1 too
        return error_response(ApiError(404, f"/v1/{rest[:100]} is not part of this API (it serves /v1/models, "
                                       "/v1/chat/completions, /v1/completions and /v1/responses)", code="not_found"))

    return api


def _add_chat_route(api: APIRouter, service: ServingQueue, running_model: Callable[[], str],
                    check_model: Callable[[str | None], None], tool_format: Callable[[], str]) -> None:
    """POST /v1/chat/completions on `api`."""

    @api.post("/chat/completions")
    async def chat_completions(req: ChatRequest, request: Request):
        tools: ToolUse | None = None
        try:
            req.refusals()
            check_model(req.model)
            engine = service.engine
            tools = req.tool_use(tool_format())
            try:
                sampling = req.sampling(model_defaults(engine), engine.budget.window if engine else 4096,
                                        req.held(tools))
            except AppError as err:
                raise held_error(app_error(err), tools) from None
            messages = req.chat(tools)
            completion_id, model = f"chatcmpl-{secrets.token_hex(12)}", running_model()
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            if req.stream and not tools.calling:
                events = await answer_events(request, service, messages, sampling)
                return StreamingResponse(_sse(events, completion_id, model, include_usage),
                                         media_type="text/event-stream",
                                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
            # a call is known once the answer is whole: with tools a stream is sent when it is
            if req.logprobs:
                sampling = replace(sampling, logprobs=True)
            whole = await answers_whole(request, service, messages, req.samplings(sampling))
        except ApiError as err:
            return _error_response(held_error(err, tools))
        if req.stream:
            (text, reply), = whole
            answer = tools.read(text)
            finish_reason = "tool_calls" if answer.calls else finish(reply)
            return StreamingResponse(_sse_whole(answer, finish_reason, reply, completion_id, model, include_usage),
                                     media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        choices = []
        for i, (text, reply) in enumerate(whole):
            answer = tools.read(text)
            choices.append({"index": i, "message": _message(answer), "logprobs": _logprobs(reply) if req.logprobs
                            else None, "finish_reason": "tool_calls" if answer.calls else finish(reply)})
        return {"id": completion_id, "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": choices, "usage": total_usage([reply for _, reply in whole])}


def _error_response(err: ApiError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


def held_error(err: ApiError, tools: ToolUse | None) -> ApiError:
    """A grammar the engine cannot build from a function's parameters is the `tools`' fault, not response_format's."""
    if tools is not None and tools.calling and err.param == ResponseFormatError.param:
        err.param = "tools"
        err.message = err.message.replace("JSON schema", "function parameters' schema")
    return err


def _logprobs(reply: Reply | None) -> dict:
    """OpenAI's `choices[].logprobs`: each chosen token with its log-probability (no alternatives: see refusals)."""
    return {"content": [{"token": token, "logprob": value, "bytes": list(token.encode("utf-8", "replace")),
                         "top_logprobs": []} for token, value in (reply.logprobs if reply else [])]}


def _message(answer: Answer) -> dict:
    message: dict = {"role": "assistant", "content": answer.content}
    if answer.calls:
        message["tool_calls"] = [{"id": c.id, "type": "function", "function": {"name": c.name,
                                                                               "arguments": c.arguments}}
                                 for c in answer.calls]
    return message


async def _sse_whole(answer: Answer, finish: str, reply: Reply | None, completion_id: str, model: str,
                     include_usage: bool) -> AsyncIterator[bytes]:
    """A whole answer as a stream (a request with tools): the role, the content or each call as one delta, the end."""
    base = {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
    yield frame({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                       "finish_reason": None, "logprobs": None}]})
    if answer.calls:
        delta = {"tool_calls": [{"index": i, "id": c.id, "type": "function",
                                 "function": {"name": c.name, "arguments": c.arguments}}
                                for i, c in enumerate(answer.calls)]}
    else:
        delta = {"content": answer.content or ""}
    yield frame({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None, "logprobs": None}]})
    yield frame({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish, "logprobs": None}]})
    if include_usage:
        yield frame({**base, "choices": [], "usage": usage(reply)})
    yield b"data: [DONE]\n\n"


async def _sse(events: AsyncIterator[Event], completion_id: str, model: str,
               include_usage: bool) -> AsyncIterator[bytes]:
    """The engine's events as chat-completion chunks. When the client goes away, Starlette cancels this generator
    and closing `events` stops the engine (webui/api_common.py)."""
    created = int(time.time())

    def chunk(delta: dict, finish_reason: str | None = None) -> bytes:
        return frame({"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                      "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]})

    yield chunk({"role": "assistant", "content": ""})
    try:
        async for event in events:
            if event.reply is not None:
                yield chunk({}, finish(event.reply))
                if include_usage:
                    yield frame({"id": completion_id, "object": "chat.completion.chunk", "created": created,
                                 "model": model, "choices": [], "usage": usage(event.reply)})
            elif event.delta:
                yield chunk({"content": event.delta})
    except AppError as err:  # the engine failed mid-answer: an error frame, then the end
        yield frame(app_error(err).body())
    yield b"data: [DONE]\n\n"


def install_error_handlers(app) -> None:
    """Errors under /v1 in OpenAI's shape (a wrong method, an unknown route, FastAPI's own validation);
    the page's routes keep Gradio's."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    previous_http = app.exception_handlers.get(HTTPException)

    async def http_error(request, exc: HTTPException):
        if not request.url.path.startswith("/v1"):
            if previous_http is not None:
                return await previous_http(request, exc)
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        code = {404: "not_found", 405: "method_not_allowed", 401: "invalid_api_key"}.get(exc.status_code)
        err = ApiError(exc.status_code, str(exc.detail), code=code, headers=dict(exc.headers or {}))
        return JSONResponse(err.body(), status_code=err.status, headers=err.headers)

    async def validation_error(request, exc: RequestValidationError):
        message, param = _validation_message(exc)
        return JSONResponse(ApiError(400, message, param=param).body(), status_code=400)

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
