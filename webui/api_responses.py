"""POST /v1/responses: OpenAI's Responses API, stateless (LangChain's `use_responses_api`, newer SDKs and agents).

`input` as text or as items (messages with text parts, earlier `function_call`s and their `function_call_output`s),
`instructions` (a system message first), `max_output_tokens`, sampling as in chat completions, `text.format` (text,
json_object, json_schema: held by the grammar), function `tools` with `tool_choice` (models/tool_calls.py), and
streaming as the API's typed events. Nothing is stored: `previous_response_id` is a 400 that says so (send the
conversation as `input` items); `store` is accepted and every response says `"store": false`. Same queue, credentials, limits and error shape as chat
completions (webui/api_common.py)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from app.serving import ServingQueue
from models.engines import JsonSchema
from models.errors import AppError
from models.tool_calls import NAME, Answer, Tool, ToolUse

from .api_common import answer_events, answer_whole, app_error, usage
from .api_request import MAX_TOOLS, ApiError, Message, Sampled, tool_use
from .chat import model_defaults


class TextFormat(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = Field(default=None, max_length=64)
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None

    def constraint(self) -> JsonSchema | None:
        if self.type == "json_object":
            return JsonSchema.any_object()
        if self.type == "json_schema":
            if self.schema_ is None:
                raise ApiError(400, "text.format: type 'json_schema' needs a schema", param="text.format")
            return JsonSchema.of(self.schema_, self.name or "")
        return None


class TextOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    format: TextFormat = TextFormat()


class FunctionTool(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["function"]
    name: str = Field(pattern=NAME.pattern)
    description: str | None = Field(default=None, max_length=10_000)
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class NamedTool(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["function"]
    name: str


class ResponseRequest(Sampled):
    """The fields of OpenAI's Responses request honoured here; unknown fields are ignored."""

    input: str | list[dict[str, Any]] = Field(min_length=1)
    instructions: str | None = None
    max_output_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    text: TextOptions | None = None
    tools: list[FunctionTool] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_choice: Literal["none", "auto", "required"] | NamedTool | None = None
    parallel_tool_calls: bool | None = None
    previous_response_id: str | None = None
    store: bool | None = None
    metadata: dict[str, str] | None = None

    def answer_limit(self) -> int | None:
        return self.max_output_tokens

    def refusals(self) -> None:
        super().refusals()
        if self.previous_response_id:
            raise ApiError(400, "previous_response_id: nothing is stored here (the server is stateless); send the "
                           "conversation so far as input items", param="previous_response_id")

    def tool_use(self, style: str) -> ToolUse:
        named = self.tool_choice.name if isinstance(self.tool_choice, NamedTool) else None
        formatted = self.text is not None and self.text.format.type != "text"
        return tool_use(tuple(Tool(t.name, t.description or "", t.parameters) for t in self.tools or ()),
                        self.tool_choice if named is None else "function", named, style,
                        "text.format" if formatted else None)

    def messages(self) -> list[dict]:
        """`instructions` and `input` as chat messages (models/tool_calls.py renders calls and their outputs)."""
        out: list[dict] = [{"role": "system", "content": self.instructions}] if self.instructions else []
        if isinstance(self.input, str):
            return [*out, {"role": "user", "content": self.input}]
        for i, item in enumerate(self.input):
            kind = item.get("type", "message")
            if kind == "message":
                out.append(_message(item, i))
            elif kind == "function_call":
                call = {"id": str(item.get("call_id", "")), "name": str(item.get("name", "")),
                        "arguments": str(item.get("arguments", "{}"))}
                if out and out[-1]["role"] == "assistant" and out[-1].get("tool_calls") and not out[-1]["content"]:
                    out[-1]["tool_calls"].append(call)  # parallel calls: one assistant turn
                else:
                    out.append({"role": "assistant", "content": "", "tool_calls": [call]})
            elif kind == "function_call_output":
                output = item.get("output", "")
                out.append({"role": "tool", "tool_call_id": str(item.get("call_id", "")), "name": None,
                            "content": output if isinstance(output, str) else json.dumps(output)})
            else:
                raise ApiError(400, f"input.{i}: items of type {str(kind)[:40]!r} are not read here (messages, "
                               "function_call and function_call_output are)", param=f"input.{i}")
        return out


def _message(item: dict, i: int) -> dict:
    content = item.get("content", "")
    if isinstance(content, list):  # input_text / output_text parts are text; an image is refused by name
        content = [{**p, "type": "text"} if isinstance(p, dict) and p.get("type") in ("input_text", "output_text")
                   else p for p in content]
    try:
        message = Message.model_validate({"role": item.get("role"), "content": content})
    except ValueError as err:
        words = str(err).splitlines()[-2:] if hasattr(err, "errors") else [str(err)]
        raise ApiError(400, f"input.{i}: {' '.join(w.strip() for w in words)[:300]}", param=f"input.{i}") from None
    return message.plain()


def add_routes(api: APIRouter, service: ServingQueue, running_model: Callable[[], str],
               check_model: Callable[[str | None], None], tool_format: Callable[[], str]) -> None:
    """POST /v1/responses on `api` (the /v1 router, with its credentials)."""

    @api.post("/responses")
    async def responses(req: ResponseRequest, request: Request):
        try:
            req.refusals()
            check_model(req.model)
            tools = req.tool_use(tool_format())
            held = tools.schema() if tools.calling else (req.text.format.constraint() if req.text else None)
            engine = service.engine
            try:
                sampling = req.sampling(model_defaults(engine), engine.budget.window if engine else 4096, held)
            except AppError as err:
                raise app_error(err) from None
            messages = tools.prompt(req.messages())
            shape = _Shape(req, running_model(), tools)
            if req.stream and not tools.calling:
                events = await answer_events(request, service, messages, sampling)
                return StreamingResponse(_stream(shape, events), media_type="text/event-stream",
                                         headers={"Cache-Control": "no-cache"})
            text, reply = await answer_whole(request, service, messages, sampling)
        except ApiError as err:
            return JSONResponse(err.body(), status_code=err.status, headers=err.headers)
        done = shape.finished(tools.read(text), reply)
        if req.stream:
            return StreamingResponse(_replay(shape, done), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        return done


class _Shape:
    """The Response object for one request, as it starts and as it ends."""

    def __init__(self, req: ResponseRequest, model: str, tools: ToolUse):
        self.id, self.message_id = f"resp_{secrets.token_hex(12)}", f"msg_{secrets.token_hex(12)}"
        self.created, self.model, self.tools = int(time.time()), model, tools
        fmt = req.text.format.model_dump(by_alias=True, exclude_none=True) if req.text else {"type": "text"}
        self.echo = {"instructions": req.instructions, "max_output_tokens": req.max_output_tokens,
                     "temperature": req.temperature, "top_p": req.top_p, "text": {"format": fmt},
                     "tools": [t.model_dump(exclude_none=True) for t in req.tools or ()],
                     "tool_choice": req.tool_choice if isinstance(req.tool_choice, str) or req.tool_choice is None
                     else req.tool_choice.model_dump(), "parallel_tool_calls": False, "store": False,
                     "metadata": req.metadata or {}}

    def response(self, status: str, output: list[dict], reply=None, incomplete: str | None = None) -> dict:
        figures = usage(reply) if reply is not None else None
        return {"id": self.id, "object": "response", "created_at": self.created, "status": status, "model": self.model,
                "output": output, "error": None,
                "incomplete_details": {"reason": incomplete} if incomplete else None, **self.echo,
                "usage": {"input_tokens": figures["prompt_tokens"], "output_tokens": figures["completion_tokens"],
                          "total_tokens": figures["total_tokens"]} if figures else None}

    def text_item(self, text: str, status: str = "completed") -> dict:
        return {"type": "message", "id": self.message_id, "status": status, "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}] if status == "completed"
                else []}

    def finished(self, answer: Answer, reply) -> dict:
        cut = reply is not None and reply.stats is not None and reply.stats.finish_reason == "length"
        if answer.calls:
            output = [{"type": "function_call", "id": f"fc_{secrets.token_hex(12)}", "call_id": c.id,
                       "name": c.name, "arguments": c.arguments, "status": "completed"} for c in answer.calls]
        else:
            output = [self.text_item(answer.content or "")]
        return self.response("incomplete" if cut else "completed", output, reply,
                             "max_output_tokens" if cut else None)


def _event(kind: str, number: int, **fields) -> bytes:
    data = json.dumps({"type": kind, "sequence_number": number, **fields}, ensure_ascii=False)
    return f"event: {kind}\ndata: {data}\n\n".encode()


async def _stream(shape: _Shape, events) -> AsyncIterator[bytes]:
    """The Responses API's streaming events for a text answer, as the engine writes it."""
    n = iter(range(1_000_000))
    item = {"item_id": shape.message_id, "output_index": 0, "content_index": 0}
    yield _event("response.created", next(n), response=shape.response("in_progress", []))
    yield _event("response.in_progress", next(n), response=shape.response("in_progress", []))
    yield _event("response.output_item.added", next(n), output_index=0, item=shape.text_item("", "in_progress"))
    yield _event("response.content_part.added", next(n), **item,
                 part={"type": "output_text", "text": "", "annotations": []})
    parts = []
    try:
        async for event in events:
            if event.reply is not None:
                text = "".join(parts)
                yield _event("response.output_text.done", next(n), **item, text=text)
                yield _event("response.content_part.done", next(n), **item,
                             part={"type": "output_text", "text": text, "annotations": []})
                done = shape.finished(Answer(text), event.reply)
                yield _event("response.output_item.done", next(n), output_index=0, item=done["output"][0])
                yield _event(f"response.{done['status']}", next(n), response=done)
            elif event.delta:
                parts.append(event.delta)
                yield _event("response.output_text.delta", next(n), **item, delta=event.delta)
    except AppError as err:  # the engine failed mid-answer
        error = app_error(err).body()["error"]
        yield _event("error", next(n), code=error["code"], message=error["message"], param=error["param"])


async def _replay(shape: _Shape, done: dict) -> AsyncIterator[bytes]:
    """A whole answer (a request with tools) as the streaming events: each output item added, filled, done."""
    n = iter(range(1_000_000))
    yield _event("response.created", next(n), response=shape.response("in_progress", []))
    for index, item in enumerate(done["output"]):
        if item["type"] == "function_call":
            yield _event("response.output_item.added", next(n), output_index=index, item={**item, "arguments": ""})
            yield _event("response.function_call_arguments.delta", next(n), item_id=item["id"], output_index=index,
                         delta=item["arguments"])
            yield _event("response.function_call_arguments.done", next(n), item_id=item["id"], output_index=index,
                         arguments=item["arguments"])
        else:
            text = item["content"][0]["text"]
            where = {"item_id": item["id"], "output_index": index, "content_index": 0}
            yield _event("response.output_item.added", next(n), output_index=index,
                         item={**item, "status": "in_progress", "content": []})
            yield _event("response.output_text.delta", next(n), **where, delta=text)
            yield _event("response.output_text.done", next(n), **where, text=text)
        yield _event("response.output_item.done", next(n), output_index=index, item=item)
    yield _event(f"response.{done['status']}", next(n), response=done)
