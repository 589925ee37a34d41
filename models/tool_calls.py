"""Tool calls (OpenAI's `tools`): how a model is told about functions, what its answer is held to, and how the answer
becomes calls. Two ways, chosen by the model:

- "json" (every model; the only way for one without tool training, which Phi-3 and Phi-3.5 are, as their cards say):
  the functions are described in a system message and the answer is held by the engine's grammar (structured output)
  to one JSON object: `{"name": ..., "arguments": {...}}` with arguments valid against that function's parameters,
  or, when the model may choose (`auto`), `{"content": "..."}` for a plain answer. So even a 135M model returns a
  call that validates; one call per answer.
- "phi4-mini" (Phi-4-mini, trained for tools): its chat template renders the functions (the system message's
  `tools`, as its card shows) and under `auto` it writes freely; an answer `functools[{"name": ..., "arguments":
  ...}, ...]` (vLLM's and OpenVINO Model Server's Phi-4-mini parsers read the same) is read as its calls, anything
  else is its answer. `required` or a named function is held by the grammar, as above. Not run here (no Phi-4-mini
  on this machine): tested on recorded answers.

A function's result (`role: "tool"`) and an earlier call reach the model as text it can read in any chat template:
the call as the JSON it wrote, the result as a user turn naming the function.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from .engines.sampling import JsonSchema

Choice = Literal["none", "auto", "required", "function"]
STYLES = ("json", "phi4-mini")
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # OpenAI's rule for a function name
NO_PARAMETERS = {"type": "object", "properties": {}}


@dataclass(frozen=True)
class Tool:
    name: str
    description: str = ""
    parameters: dict | None = None  # the JSON schema of its arguments object; None: takes none

    def arguments_schema(self) -> dict:
        return self.parameters if self.parameters is not None else NO_PARAMETERS

    def card(self) -> dict:
        return {"name": self.name, "description": self.description, "parameters": self.arguments_schema()}


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as OpenAI sends it

    @classmethod
    def new(cls, name: str, arguments: Any) -> ToolCall:
        text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
        return cls(f"call_{secrets.token_hex(12)}", name, text)


@dataclass(frozen=True)
class Answer:
    content: str | None
    calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True)
class ToolUse:
    """What a request asks about tools: its functions, the choice (`none`, `auto`, `required`, or one `function`
    by name) and the model's style ("json" or its own, e.g. "phi4-mini")."""

    tools: tuple[Tool, ...]
    choice: Choice = "auto"
    function: str = ""
    style: str = "json"

    @property
    def calling(self) -> bool:
        return bool(self.tools) and self.choice != "none"

    @property
    def free(self) -> bool:
        """The model writes freely and its own format is read afterwards (a tool-trained model under `auto`)."""
        return self.choice == "auto" and self.style != "json"

    def _called(self) -> tuple[Tool, ...]:
        return tuple(t for t in self.tools if t.name == self.function) if self.choice == "function" else self.tools

    def schema(self) -> JsonSchema | None:
        """The grammar the answer is held to; None when the model writes freely (no tools, `none`, or `free`)."""
        if not self.calling or self.free:
            return None
        calls = [{"type": "object", "additionalProperties": False, "required": ["name", "arguments"],
                  "properties": {"name": {"const": t.name}, "arguments": t.arguments_schema()}}
                 for t in self._called()]
        if self.choice == "auto":
            calls.append({"type": "object", "additionalProperties": False, "required": ["content"],
                          "properties": {"content": {"type": "string"}}})
        return JsonSchema.of(calls[0] if len(calls) == 1 else {"anyOf": calls}, "tool_call")

    def instructions(self) -> str:
        cards = json.dumps([t.card() for t in self.tools], ensure_ascii=False)
        head = f"You can call these functions:\n{cards}\n"
        if self.choice == "function":
            return head + (f'Call {self.function}: answer with one JSON object {{"name": "{self.function}", '
                           '"arguments": {...}} whose arguments fit its parameters.')
        if self.choice == "required":
            return head + ('Call one of them: answer with one JSON object {"name": <function name>, "arguments": '
                           '{...}} whose arguments fit its parameters.')
        return head + ('To call one, answer with one JSON object {"name": <function name>, "arguments": {...}}. To '
                       'answer without a call (when no function is needed, or with a function\'s result), answer '
                       'with {"content": <your answer>}.')

    def prompt(self, messages: list[dict]) -> list[dict]:
        """The chat as the model reads it: the functions described (when it may call them), earlier calls and
        their results as text. `messages` are OpenAI's, with `tool_calls`, `tool_call_id` and role `tool`."""
        names = {c["id"]: c["name"] for m in messages for c in m.get("tool_calls") or ()}
        out: list[dict] = []
        for m in messages:
            if m["role"] == "tool":
                name = names.get(m.get("tool_call_id") or "", m.get("name") or "a function")
                out.append({"role": "user", "content": f"Result of {name}: {m['content']}"})
            elif m["role"] == "assistant" and m.get("tool_calls"):
                out.append({"role": "assistant", "content": self._written(m["tool_calls"], m["content"])})
            else:
                out.append({"role": m["role"], "content": m["content"]})
        if not self.calling:
            return out
        if self.free:  # the model's own template renders the functions (Phi-4-mini: the system message's `tools`)
            cards = json.dumps([t.card() for t in self.tools], ensure_ascii=False)
            if out and out[0]["role"] == "system":
                return [{**out[0], "tools": cards}, *out[1:]]
            return [{"role": "system", "content": "", "tools": cards}, *out]
        if out and out[0]["role"] == "system":
            return [{"role": "system", "content": f"{out[0]['content']}\n\n{self.instructions()}"}, *out[1:]]
        return [{"role": "system", "content": self.instructions()}, *out]

    def _written(self, calls: list[dict], content: str) -> str:
        """An earlier call, as the model writes one when it may call (so it sees its own format), else in words
        (under `none` a model shown JSON calls answers with another)."""
        parsed = [{"name": c["name"], "arguments": _loads(c["arguments"])} for c in calls]
        if not self.calling:
            lines = [f"(I called {p['name']} with {json.dumps(p['arguments'], ensure_ascii=False)}.)" for p in parsed]
        elif self.style == "phi4-mini":
            lines = [f"functools{json.dumps(parsed, ensure_ascii=False)}"]
        else:
            lines = [json.dumps(p, ensure_ascii=False) for p in parsed]
        return "\n".join(([content] if content else []) + lines)

    def read(self, text: str) -> Answer:
        """The answer as content or calls. Text that is not a call (a cut answer, a plain reply) is content."""
        if not self.calling:
            return Answer(text)
        if self.free:
            return _read_phi4_mini(text)
        try:
            value = json.loads(text)
        except ValueError:
            return Answer(text)  # cut at the length limit: what there is, as text
        if isinstance(value, dict) and "name" in value:
            return Answer(None, (ToolCall.new(value["name"], value.get("arguments", {})),))
        if isinstance(value, dict) and isinstance(value.get("content"), str):
            return Answer(value["content"])
        return Answer(text)


def _loads(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


def _read_phi4_mini(text: str) -> Answer:
    """Phi-4-mini's calls: `functools[...]` (and its special `<|tool_call|>` tokens around it, if kept)."""
    body = text.strip().removeprefix("<|tool_call|>").removesuffix("<|/tool_call|>").strip()
    if body.startswith("functools"):
        body = body.removeprefix("functools").strip()
    elif not body.startswith("[{"):
        return Answer(text)
    try:
        value = json.loads(body)
    except ValueError:
        return Answer(text)
    if not isinstance(value, list) or not value or not all(isinstance(c, dict) and isinstance(c.get("name"), str)
                                                           for c in value):
        return Answer(text)
    return Answer(None, tuple(ToolCall.new(c["name"], c.get("arguments", {})) for c in value))
