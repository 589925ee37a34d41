"""An OpenAI-compatible API on the page's own server: GET /v1/models, GET /v1/models/{id}, POST /v1/chat/completions.

What a request leaves out comes from the model's own defaults, the same the page starts from (`model_defaults`:
the model's generation config, else greedy); without `max_tokens` an answer may run to the end of the window. The
running model answers under its catalog id and under `ALIAS`, which always names the model running now (a client
configured with it keeps working after a switch on the page); another id is a 404 that says how to switch.

Same engine, same queue and same credentials as the page (app/serving.py ServingQueue). `response_format`
(`text`, `json_object`, `json_schema`) holds the answer to JSON in the engine itself (structured output); an
engine without it, or a schema its grammar compiler rejects, is a 400 on `response_format`. Request bodies
are typed models with bounds, so bad input is a 400 before anything runs; every error leaves in
OpenAI's shape {"error": {"message", "type", "param", "code"}}; streaming is server-sent events ending
with `data: [DONE]`. A client that goes away mid-stream stops the generation in the engine.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.serving import Event, QueueFull, ServingQueue
from models.engines import JsonSchema, Reply, Sampling
from models.engines.sampling import MAX_NEW_TOKENS, SEED, TEMPERATURE, TOP_P
from models.errors import AppError, PromptTooLong

from .chat import model_defaults

OWNED_BY = "phi3-aipc"
ALIAS = "phi3-aipc"  # always the model running now, whichever it is


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class JsonSchemaFormat(BaseModel):
    """OpenAI's `response_format.json_schema`: `name`, `schema`, optional `description` and `strict` (the
    schema is always enforced here, token by token, so `strict` changes nothing)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_when_asked(self):
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("type 'json_schema' needs a json_schema object with name and schema")
        return self

    def constraint(self) -> JsonSchema | None:
        if self.type == "json_object":
            return JsonSchema.any_object()
        if self.type == "json_schema":
            return JsonSchema.of(self.json_schema.schema_, self.json_schema.name)
        return None


class ChatRequest(BaseModel):
    """The fields of OpenAI's chat-completions request this server honours; unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    messages: list[Message] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=TEMPERATURE[0], le=TEMPERATURE[1])
    top_p: float | None = Field(default=None, ge=TOP_P[0], le=TOP_P[1])  # 0: only the likeliest token (greedy)
    max_tokens: int | None = Field(default=None, ge=MAX_NEW_TOKENS[0], le=MAX_NEW_TOKENS[1])
    max_completion_tokens: int | None = Field(default=None, ge=MAX_NEW_TOKENS[0], le=MAX_NEW_TOKENS[1])
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=-(2**63), le=2**64 - 1)  # OpenAI's range; mapped by `sampling`
    n: int | None = Field(default=1, ge=1, le=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(default=None, max_length=256)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    response_format: ResponseFormat | None = None

    def sampling(self, defaults: Sampling, window: int) -> Sampling:
        """The request's sampling: what it leaves out is the model's (`defaults`, as the page starts from); without
        a length limit the answer may run to the end of the `window`. OpenAI's ranges are mapped, never refused:
        a negative seed means a new one for every answer (Open WebUI sends -1), a larger one is taken modulo 2^31,
        top_p 0 keeps only the likeliest token (greedy), empty stop strings are ignored."""
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        temperature = defaults.temperature if self.temperature is None else self.temperature
        top_p = defaults.top_p if self.top_p is None else self.top_p
        if top_p == 0:
            temperature, top_p = 0.0, 1.0
        seed = defaults.seed if self.seed is None else (None if self.seed < 0 else self.seed % (SEED[1] + 1))
        limit = self.max_completion_tokens or self.max_tokens or max(MAX_NEW_TOKENS[0], min(window, MAX_NEW_TOKENS[1]))
        return Sampling(temperature=temperature, top_p=top_p, top_k=defaults.top_k,
                        max_new_tokens=limit, seed=seed, stop=tuple(s for s in stop if s),
                        repetition_penalty=defaults.repetition_penalty,
                        response_format=self.response_format.constraint() if self.response_format else None)

    def chat(self) -> list[dict]:
        out = []
        for m in self.messages:
            role = "system" if m.role == "developer" else m.role
            out.append({"role": role, "content": m.text()})
        if not any(m["content"].strip() for m in out):
            raise ApiError(400, "messages must contain some text", param="messages")
        return out


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class ModelInfo:
    id: str
    created: int


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


def app_error(err: AppError) -> ApiError:
    if isinstance(err, QueueFull):
        return ApiError(429, str(err), type_="rate_limit_error", code="queue_full",
                        headers={"Retry-After": str(err.retry_after_s)})
    if isinstance(err, PromptTooLong):
        return ApiError(400, str(err), param="messages", code="context_length_exceeded")
    if isinstance(err, ValueError):  # InvalidSampling and other bad values; ResponseFormatError names its param
        return ApiError(400, str(err), param=getattr(err, "param", None))
    return ApiError(503, str(err), type_="server_error", code="engine_unavailable")


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
           dependencies: list | None = None):
    """The /v1 routes. `running_model()` is the id of the model being served (it answers under that id and under
    ALIAS); `other_models()` the ids it could switch to (named in a 404, never switched to from the API)."""

    api = APIRouter(prefix="/v1", dependencies=dependencies or [])
    started = int(time.time())

    def error_response(err: ApiError) -> JSONResponse:
        return JSONResponse(err.body(), status_code=err.status, headers=err.headers)

    def model_card(model_id: str) -> dict:
        return {"id": model_id, "object": "model", "created": started, "owned_by": OWNED_BY}

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

    @api.post("/chat/completions")
    async def chat_completions(req: ChatRequest):
        try:
            if req.model and req.model not in (running_model(), ALIAS):
                raise not_running(req.model)
            engine = service.engine
            try:
                sampling = req.sampling(model_defaults(engine), engine.budget.window if engine else 4096)
            except AppError as err:
                raise app_error(err) from None
            messages = req.chat()
        except ApiError as err:
            return error_response(err)
        owner = f"api:{secrets.token_urlsafe(12)}"
        completion_id = f"chatcmpl-{secrets.token_hex(12)}"
        model = running_model()
        events = service.ask(owner, messages, sampling)
        try:
            first = await anyio.to_thread.run_sync(_first_answer_event, events)
        except AppError as err:
            events.close()
            return error_response(app_error(err))
        if req.stream:
            usage = bool(req.stream_options and req.stream_options.include_usage)
            return StreamingResponse(_sse(events, first, completion_id, model, usage), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        try:
            text, reply = await anyio.to_thread.run_sync(_collect, events, first)
        except AppError as err:
            return error_response(app_error(err))
        finally:
            events.close()
        return {"id": completion_id, "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": _finish(reply), "logprobs": None}],
                "usage": _usage(reply)}

    other = ["GET", "PUT", "PATCH", "DELETE"]

    @api.api_route("/chat/completions", methods=other, include_in_schema=False)
    @api.api_route("/models", methods=["POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    @api.api_route("/models/{model_id:path}", methods=["POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def wrong_method(request: Request):
        return error_response(ApiError(405, f"{request.method} is not allowed on {request.url.path}",
                                       code="method_not_allowed"))

    @api.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def unknown(rest: str):  # the page is mounted at "/": without this, Gradio would answer for /v1 too
        return error_response(ApiError(404, f"/v1/{rest} is not part of this API (it serves /v1/models and "
                                       "/v1/chat/completions)", code="not_found"))

    return api


def _first_answer_event(events: Iterator[Event]) -> Event | None:
    """Wait in the queue (in a worker thread) until the first text or the end; errors are raised here."""
    for event in events:
        if not event.position:
            return event
    return None


def _collect(events: Iterator[Event], first: Event | None) -> tuple[str, Reply | None]:
    parts, reply = [], None
    for event in ([first] if first else []) + list(events):
        if event.reply is not None:
            reply = event.reply
        else:
            parts.append(event.delta)
    return "".join(parts), reply


def _finish(reply: Reply | None) -> str:
    reason = reply.stats.finish_reason if reply and reply.stats else "stop"
    return "length" if reason == "length" else "stop"


def _usage(reply: Reply | None) -> dict:
    prompt = reply.stats.prompt_tokens if reply and reply.stats else 0
    done = reply.stats.generated_tokens if reply and reply.stats else 0
    return {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done}


def _frame(data: dict) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def _sse(events: Iterator[Event], first: Event | None, completion_id: str, model: str,
               include_usage: bool) -> AsyncIterator[bytes]:
    """One place that turns the engine's events into server-sent events. When the client goes away,
    Starlette cancels this generator; `finally` closes the events, which stops the engine."""

    created = int(time.time())

    def chunk(delta: dict, finish: str | None = None) -> bytes:
        return _frame({"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]})

    done = object()
    try:
        yield chunk({"role": "assistant", "content": ""})
        event = first
        while event is not None:
            if event.reply is not None:
                yield chunk({}, _finish(event.reply))
                if include_usage:
                    yield _frame({"id": completion_id, "object": "chat.completion.chunk", "created": created,
                                  "model": model, "choices": [], "usage": _usage(event.reply)})
                break
            if event.delta:
                yield chunk({"content": event.delta})
            try:
                event = await anyio.to_thread.run_sync(next, events, done)
            except AppError as err:  # the engine failed mid-answer: an error frame, then the end
                yield _frame(app_error(err).body())
                break
            if event is done:
                break
        yield b"data: [DONE]\n\n"
    finally:  # shielded: a client gone mid-stream cancels this generator, and the close must still run (it ends
        # the caller's turn in the queue; skipped, the turn was held until the garbage collector found it)
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(events.close)


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
