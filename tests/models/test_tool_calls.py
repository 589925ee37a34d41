"""Tool calls in the model's terms (models/tool_calls.py): what the model is shown, what its answer is held to, and
how an answer becomes calls, for the grammar-held "json" style and Phi-4-mini's own format (recorded answers: no
Phi-4-mini runs on this machine)."""

from __future__ import annotations

import json

from models.catalog import load_catalog
from models.tool_calls import Tool, ToolUse

WEATHER = Tool("get_weather", "The weather in a city", {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
CLOCK = Tool("get_time")  # no parameters: OpenAI allows leaving them out
CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}]},
        {"role": "tool", "content": '{"sky": "sunny"}', "tool_call_id": "call_1", "name": None}]


def test_the_model_is_told_the_functions_in_its_system_message_and_reads_results_as_a_user_turn():
    shown = ToolUse((WEATHER, CLOCK), "auto").prompt(CHAT)
    assert [m["role"] for m in shown] == ["system", "user", "assistant", "user"]
    assert shown[0]["content"].startswith("Be brief.\n\nYou can call these functions:")
    assert '"name": "get_time"' in shown[0]["content"] and '"properties": {}' in shown[0]["content"]
    assert json.loads(shown[2]["content"]) == {"name": "get_weather", "arguments": {"city": "Paris"}}
    assert shown[3]["content"] == 'Result of get_weather: {"sky": "sunny"}'  # named from the call's id
    plain = ToolUse((WEATHER,), "none").prompt(CHAT)  # not calling: no functions, the call in words
    assert plain[0] == CHAT[0] and plain[2]["content"].startswith("(I called get_weather with")


def test_a_forced_call_is_held_to_the_functions_parameters_and_auto_may_answer_in_words():
    named = json.loads(ToolUse((WEATHER, CLOCK), "function", "get_weather").schema().schema)
    assert named["properties"]["name"] == {"const": "get_weather"}
    assert named["properties"]["arguments"] == WEATHER.parameters and named["additionalProperties"] is False
    required = json.loads(ToolUse((WEATHER, CLOCK), "required").schema().schema)
    assert [o["properties"]["name"]["const"] for o in required["anyOf"]] == ["get_weather", "get_time"]
    auto = json.loads(ToolUse((WEATHER,), "auto").schema().schema)
    assert auto["anyOf"][1]["required"] == ["content"]
    assert ToolUse((WEATHER,), "none").schema() is None and ToolUse((), "auto").schema() is None


def test_an_answer_becomes_calls_or_content():
    use = ToolUse((WEATHER,), "auto")
    call = use.read('{"name": "get_weather", "arguments": {"city": "Oslo"}}')
    assert call.content is None and call.calls[0].name == "get_weather"
    assert json.loads(call.calls[0].arguments) == {"city": "Oslo"} and call.calls[0].id.startswith("call_")
    assert use.read('{"content": "Sunny."}').content == "Sunny." and not use.read('{"content": "x"}').calls
    cut = '{"name": "get_weather", "argu'  # cut at max_tokens: the text, never a half call
    assert use.read(cut).content == cut and not use.read(cut).calls
    assert ToolUse((WEATHER,), "none").read('{"name": "get_weather"}').content == '{"name": "get_weather"}'


# Phi-4-mini-instruct's answers to a tools prompt, as OpenVINO Model Server's and vLLM's Phi-4-mini parsers take
# them (functools[...]; the <|tool_call|> special tokens appear when an engine keeps special tokens).
PHI4_CALLS = [
    'functools[{"name": "get_weather", "arguments": {"city": "Paris"}}]',
    '<|tool_call|>functools[{"name": "get_weather", "arguments": {"city": "Paris"}}, '
    '{"name": "get_time", "arguments": {}}]<|/tool_call|>',
    '[{"name": "get_weather", "arguments": {"city": "Paris"}}]',
]


def test_phi4_mini_chooses_freely_under_auto_and_its_own_format_is_read():
    use = ToolUse((WEATHER, CLOCK), "auto", style="phi4-mini")
    assert use.schema() is None  # trained for tools: it writes freely
    shown = use.prompt(CHAT)
    assert json.loads(shown[0]["tools"])[0]["name"] == "get_weather"  # its template renders the system's tools
    assert shown[0]["content"] == "Be brief." and shown[2]["content"].startswith("functools[")
    counts = [len(use.read(text).calls) for text in PHI4_CALLS]
    assert counts == [1, 2, 1] and json.loads(use.read(PHI4_CALLS[1]).calls[1].arguments) == {}
    for prose in ("It is sunny in Paris.", "functools[not json", "[1, 2]"):
        assert use.read(prose).content == prose and not use.read(prose).calls
    forced = ToolUse((WEATHER,), "required", style="phi4-mini")
    assert forced.schema() is not None and "You can call" in forced.prompt(CHAT)[0]["content"]


def test_the_catalog_says_which_models_call_tools_natively():
    formats = {a.family: a.tool_format for a in load_catalog()}
    assert formats["phi-4-mini"] == "phi4-mini"
    assert {formats[f] for f in formats if f.startswith("phi-3")} == {"json"}  # their cards: no tool training
