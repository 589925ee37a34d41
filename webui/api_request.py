"""The API's request bodies as typed models with bounds (bad input is a 400 before anything runs), and its error.

What each field does here (honoured, mapped, or refused with a 400) is listed in the README's API section.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.engines import JsonSchema, Sampling
from models.engines.sampling import MAX_NEW_TOKENS, SEED, TEMPERATURE, TOP_P
from models.tool_calls import NAME, Tool, ToolUse

MAX_TOOLS = 128
MAX_N = 8  # answers per request: each takes a turn in the queue


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def _text_of(parts: list[dict]) -> str:
    """A message's content parts as text. Only text is read here: a picture or a sound is refused by name."""
    out = []
    for part in parts:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            out.append(part["text"])
        elif kind in ("image_url", "input_image", "image"):
            raise ValueError("an image_url part: the model running here reads text only (no vision model runs in "
                             "this app yet); describe the picture in text instead")
        elif kind in ("input_audio", "file", "refusal"):
            raise ValueError(f"a {kind} part: only text parts are read here")
        else:
            raise ValueError(f"a content part must be {{'type': 'text', 'text': ...}}, got {str(part)[:80]}")
    return "".join(out)


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=64)
    arguments: str = Field(default="{}", max_length=100_000)


class ToolCallIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(max_length=128)
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[Any] | None = None
    tool_calls: list[ToolCallIn] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_call_id: str | None = Field(default=None, max_length=128)
    name: str | None = Field(default=None, max_length=64)

    @field_validator("content")
    @classmethod
    def _parts_are_text(cls, content):
        if isinstance(content, list):
            _text_of(content)  # refuses what is not text, naming it
        return content

    def text(self) -> str:
        if self.content is None:
            return ""
        return self.content if isinstance(self.content, str) else _text_of(self.content)

    def plain(self) -> dict:
        role = "system" if self.role == "developer" else self.role
        out: dict = {"role": role, "content": self.text()}
        if self.tool_calls:
            out["tool_calls"] = [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
                                 for c in self.tool_calls]
        if self.role == "tool":
            out.update(tool_call_id=self.tool_call_id, name=self.name)
        return out


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


class FunctionIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(pattern=NAME.pattern)
    description: str = Field(default="", max_length=10_000)
    parameters: dict[str, Any] | None = None
    strict: bool | None = None  # always held to its parameters here


class ToolIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["function"]
    function: FunctionIn


class NamedFunction(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str


class NamedChoice(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["function"]
    function: NamedFunction


class Sampled(BaseModel):
    """The sampling fields every route has (chat, completions, responses) and OpenAI's ranges for them."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    temperature: float | None = Field(default=None, ge=TEMPERATURE[0], le=TEMPERATURE[1])
    top_p: float | None = Field(default=None, ge=TOP_P[0], le=TOP_P[1])  # 0: only the likeliest token (greedy)
    stream: bool | None = False
    user: str | None = Field(default=None, max_length=256)

    def answer_limit(self) -> int | None:
        return None

    def refusals(self) -> None:
        """What OpenAI offers and this server cannot do: a 400 that says so, never accepted and ignored."""

    def sampling(self, defaults: Sampling, window: int, held: JsonSchema | None = None) -> Sampling:
        """The request's sampling: what it leaves out is the model's (`defaults`, as the page starts from); without
        a length limit the answer may run to the end of the `window`. OpenAI's ranges are mapped, never refused:
        a negative seed means a new one for every answer (Open WebUI sends -1), a larger one is taken modulo 2^31,
        top_p 0 keeps only the likeliest token (greedy), empty stop strings are ignored. `held`: the JSON schema
        the answer is held to."""
        given_stop, given_seed = getattr(self, "stop", None), getattr(self, "seed", None)
        stop = [given_stop] if isinstance(given_stop, str) else list(given_stop or [])
        temperature = defaults.temperature if self.temperature is None else self.temperature
        top_p = defaults.top_p if self.top_p is None else self.top_p
        if top_p == 0:
            temperature, top_p = 0.0, 1.0
        seed = defaults.seed if given_seed is None else (None if given_seed < 0 else given_seed % (SEED[1] + 1))
        limit = self.answer_limit() or max(MAX_NEW_TOKENS[0], min(window, MAX_NEW_TOKENS[1]))
        return Sampling(temperature=temperature, top_p=top_p, top_k=defaults.top_k,
                        max_new_tokens=limit, seed=seed, stop=tuple(s for s in stop if s),
                        repetition_penalty=defaults.repetition_penalty, response_format=held,
                        frequency_penalty=getattr(self, "frequency_penalty", None) or 0.0,
                        presence_penalty=getattr(self, "presence_penalty", None) or 0.0)


class Asked(Sampled):
    """The fields chat completions and completions share besides sampling's own."""

    max_tokens: int | None = Field(default=None, ge=MAX_NEW_TOKENS[0], le=MAX_NEW_TOKENS[1])
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=-(2**63), le=2**64 - 1)  # OpenAI's range; mapped by `sampling`
    n: int | None = Field(default=1, ge=1)  # answers to this request, each its own turn (up to MAX_N; not streamed)
    stream_options: StreamOptions | None = None
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)

    def answer_limit(self) -> int | None:
        return self.max_tokens

    def refusals(self) -> None:
        if (self.n or 1) > MAX_N:
            raise ApiError(400, f"n: at most {MAX_N} answers per request here (got {self.n})", param="n")
        if (self.n or 1) > 1 and self.stream:
            raise ApiError(400, "n: several answers are sent whole here, not streamed; ask without stream",
                           param="n")

    def samplings(self, one: Sampling) -> list[Sampling]:
        """`n` answers' sampling: a given seed counts up from itself, no seed means a new one for each (the engine
        draws it); greedy answers are the same n times, as at OpenAI."""
        n = self.n or 1
        if one.seed is None or one.greedy:
            return [one] * n
        return [replace(one, seed=(one.seed + i) % (SEED[1] + 1)) for i in range(n)]


class ChatRequest(Asked):
    """The fields of OpenAI's chat-completions request this server honours; unknown fields are ignored."""

    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=MAX_NEW_TOKENS[0], le=MAX_NEW_TOKENS[1])
    logprobs: bool | None = None  # true: refused in `refusals`
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    tools: list[ToolIn] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_choice: Literal["none", "auto", "required"] | NamedChoice | None = None
    parallel_tool_calls: bool | None = None  # one call per answer here, whatever it says

    def answer_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def refusals(self) -> None:
        super().refusals()
        if self.top_logprobs:
            raise ApiError(400, "top_logprobs: only the chosen token's log-probability is reported here (OpenVINO "
                           "GenAI computes one per position); send logprobs: true without top_logprobs",
                           param="top_logprobs")
        if self.logprobs and self.stream:
            raise ApiError(400, "logprobs: log-probabilities come with a whole answer here, not streamed; ask "
                           "without stream", param="logprobs")

    def tool_use(self, style: str) -> ToolUse:
        """The request's tools with the model's `style` (models/tool_calls.py)."""
        named = self.tool_choice.function.name if isinstance(self.tool_choice, NamedChoice) else None
        formatted = self.response_format is not None and self.response_format.type != "text"
        return tool_use(tuple(Tool(t.function.name, t.function.description, t.function.parameters)
                              for t in self.tools or ()), self.tool_choice if named is None else "function", named,
                        style, "response_format" if formatted else None)

    def held(self, tools: ToolUse) -> JsonSchema | None:
        """What the answer is held to: a call (with tools), else the response_format's schema."""
        if tools.calling:
            return tools.schema()
        return self.response_format.constraint() if self.response_format else None

    def chat(self, tools: ToolUse) -> list[dict]:
        """The messages as the engine reads them: `developer` is a system message; tool calls and their results
        are rendered by `tools` (models/tool_calls.py)."""
        out = tools.prompt([m.plain() for m in self.messages])
        if not any(str(m["content"]).strip() for m in out):
            raise ApiError(400, "messages must contain some text", param="messages")
        return out


def tool_use(tools: tuple[Tool, ...], choice: str | None, named: str | None, style: str,
             format_param: str | None) -> ToolUse:
    """Chat's and Responses' tools, checked the same way. OpenAI's default choice is `auto` with tools and `none`
    without; a choice that needs tools, or names one not given, is a 400, and so is a JSON format (`format_param`,
    when the request sets one) beside tools that may be called: an answer is held to one format."""
    if len({t.name for t in tools}) != len(tools):
        raise ApiError(400, "tools: two functions have the same name", param="tools")
    if named is not None and named not in {t.name for t in tools}:
        raise ApiError(400, f"tool_choice names {named[:64]!r}, which is not among the tools", param="tool_choice")
    choice = choice or ("auto" if tools else "none")
    if choice == "required" and not tools:
        raise ApiError(400, "tool_choice 'required' needs tools", param="tool_choice")
    use = ToolUse(tools, choice, named or "", style)
    if use.calling and format_param:
        raise ApiError(400, f"{format_param} cannot be combined with tools here: an answer is held to one format "
                       f"(ask with tool_choice 'none', or without {format_param})", param=format_param)
    return use

