"""Tool calls through the API (issue 20), on the real app and the embedded model, with the clients people use: the
`openai` SDK's tool loop and LangChain's `bind_tools` / `with_structured_output`. A `role: "tool"` message used to be
a 400 and `tools` was silently ignored; now a call comes back as `tool_calls`, held by the grammar to the function's
parameters, so even a 135M model returns one that validates."""

from __future__ import annotations

import json

import httpx
import pytest
from langchain_openai import ChatOpenAI
from openai import BadRequestError
from pydantic import BaseModel, ConfigDict, Field


class Weather(BaseModel):
    """The current weather in a city."""

    model_config = ConfigDict(extra="forbid")
    city: str = Field(max_length=40)
    unit: str = Field(json_schema_extra={"enum": ["celsius", "fahrenheit"]})


WEATHER = {"type": "function", "function": {"name": "get_weather", "description": Weather.__doc__,
                                            "parameters": Weather.model_json_schema()}}
CLOCK = {"type": "function", "function": {"name": "get_time", "description": "The time now in a city",
                                          "parameters": {"type": "object", "properties": {"city": {"type": "string",
                                                                                                   "maxLength": 40}},
                                                         "required": ["city"]}}}
RESULT = {"temperature": 21, "sky": "sunny"}


def get_weather(city: str, unit: str) -> dict:
    return {**RESULT, "city": city, "unit": unit}


def test_the_openai_sdks_tool_loop_runs_to_a_final_answer(client):
    """The loop the SDK documents: ask with tools; run each call (its arguments validate against the function's
    schema); send the results as `tool` messages; ask again until the model answers in words (the last round with
    tool_choice "none", as agent loops bound theirs)."""
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    calls = []
    for round_ in range(3):
        out = client.chat.completions.create(model="phi3-aipc", messages=messages, tools=[WEATHER, CLOCK],
                                             tool_choice="required" if round_ == 0 else "none" if round_ == 2
                                             else "auto", max_tokens=64)
        choice = out.choices[0]
        if choice.finish_reason != "tool_calls":
            break
        messages.append(choice.message.model_dump(exclude_none=True))
        for call in choice.message.tool_calls:
            assert call.function.name == "get_weather" and call.id.startswith("call_")
            args = Weather.model_validate_json(call.function.arguments)  # valid against its schema, or raises
            calls.append(args)
            messages.append({"role": "tool", "tool_call_id": call.id,
                             "content": json.dumps(get_weather(args.city, args.unit))})
    print(messages, choice.message.content)
    assert calls and choice.finish_reason == "stop" and not choice.message.tool_calls
    answer = choice.message.content
    assert answer.strip() and not answer.lstrip().startswith("{")  # in words, not a call written as text
    bare = client.chat.completions.create(model="phi3-aipc", messages=messages[:1], max_tokens=1)
    assert out.usage.prompt_tokens > bare.usage.prompt_tokens + 20  # the call and its result were read


def test_required_and_a_named_function_return_a_call_that_validates_streamed_or_not(client):
    question = [{"role": "user", "content": "What time is it in Tokyo?"}]
    named = client.chat.completions.create(model="phi3-aipc", messages=question, tools=[WEATHER, CLOCK],
                                           tool_choice={"type": "function", "function": {"name": "get_weather"}},
                                           max_tokens=64)
    assert named.choices[0].message.tool_calls[0].function.name == "get_weather"
    Weather.model_validate_json(named.choices[0].message.tool_calls[0].function.arguments)
    stream = client.chat.completions.create(model="phi3-aipc", messages=question, tools=[CLOCK],
                                            tool_choice="required", max_tokens=64, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    calls = [t for d in deltas for t in d.tool_calls or ()]
    assert len(calls) == 1 and calls[0].function.name == "get_time" and calls[0].index == 0
    assert isinstance(json.loads(calls[0].function.arguments)["city"], str)
    assert chunks[-2].choices[0].finish_reason == "tool_calls" and chunks[-1].usage.completion_tokens > 0


def test_langchain_binds_tools_and_gets_structured_output_by_function_calling(live):
    llm = ChatOpenAI(base_url=f"{live.url}/v1", api_key="not-needed-on-loopback", model="phi3-aipc",
                     max_retries=0, max_tokens=64, timeout=120)
    message = llm.bind_tools([Weather], tool_choice="Weather").invoke("What is the weather in Rome?")
    assert message.tool_calls and message.tool_calls[0]["name"] == "Weather"
    Weather.model_validate(message.tool_calls[0]["args"])
    found = llm.with_structured_output(Weather, method="function_calling").invoke("The weather in Oslo?")
    assert isinstance(found, Weather)  # was None: tool_choice was ignored


def test_models_say_how_they_call_tools(client, live):
    card = httpx.get(f"{live.url}/v1/models/phi3-aipc").json()
    assert card["tool_calls"] == "grammar"  # SmolLM2 has no tool format of its own


@pytest.mark.parametrize(("extra", "param", "says"), [
    ({"tool_choice": "required"}, "tool_choice", "needs tools"),
    ({"tools": [CLOCK], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice",
     "not among the tools"),
    ({"tools": [{"type": "function", "function": {"name": "has space"}}]}, "tools.0.function.name", "pattern"),
    ({"tools": [CLOCK, CLOCK]}, "tools", "same name"),
    ({"tools": [CLOCK], "response_format": {"type": "json_object"}}, "response_format", "cannot be combined"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "foo"}}}],
      "tool_choice": "required"}, "tools", "function parameters"),
])
def test_a_tool_request_that_cannot_be_honoured_is_a_400_naming_its_field(client, extra, param, says):
    with pytest.raises(BadRequestError) as caught:
        client.chat.completions.create(model="phi3-aipc", max_tokens=8, **extra,
                                       messages=[{"role": "user", "content": "Hi"}])
    error = caught.value.body
    assert error["param"] == param and says in error["message"], error


def test_a_picture_is_refused_by_its_name(client):
    with pytest.raises(BadRequestError) as caught:
        client.chat.completions.create(model="phi3-aipc", max_tokens=8, messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}])
    assert "image_url part: the model running here reads text only" in caught.value.body["message"]
    assert "Input should be a valid string" not in caught.value.body["message"]
