"""The endpoints tools call besides chat completions (issue 20): /v1/completions (Continue's autocomplete, LiteLLM's
text_completion) and the stateless /v1/responses (LangChain's use_responses_api, newer SDKs and agents), through the
`openai` SDK and LangChain against the real app on the embedded model. Both were a 404."""

from __future__ import annotations

import json

import httpx
import pytest
from langchain_openai import ChatOpenAI
from openai import BadRequestError

from tests.support.json_answers import CITY, valid_city

WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city",
           "parameters": {"type": "object", "additionalProperties": False, "required": ["city"],
                          "properties": {"city": {"type": "string", "maxLength": 40}}}}


# -- /v1/completions ------------------------------------------------------------------------------------------------

def test_completions_continue_the_prompt_as_sent_streamed_or_not(client):
    prompt = "The capital of France is"
    whole = client.completions.create(model="phi3-aipc", prompt=prompt, max_tokens=8, temperature=0)
    assert whole.object == "text_completion" and whole.choices[0].text and whole.usage.completion_tokens == 8
    chat = client.chat.completions.create(model="phi3-aipc", messages=[{"role": "user", "content": prompt}],
                                          max_tokens=1)
    assert whole.usage.prompt_tokens < chat.usage.prompt_tokens  # no chat template around it
    chunks = list(client.completions.create(model="phi3-aipc", prompt=prompt, max_tokens=8, temperature=0,
                                            stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text  # the same path
    assert chunks[-1].usage.completion_tokens == 8
    echoed = client.completions.create(model="phi3-aipc", prompt=[prompt], max_tokens=8, temperature=0, echo=True)
    assert echoed.choices[0].text == prompt + whole.choices[0].text


@pytest.mark.parametrize(("extra", "param"), [
    ({"suffix": "return x"}, "suffix"), ({"logprobs": 2}, "logprobs"), ({"best_of": 2}, "best_of"), ({"n": 9}, "n"),
    ({"prompt": ["a", "b"]}, "prompt"), ({"prompt": [1, 2, 3]}, "prompt"), ({"prompt": ""}, "prompt"),
    ({"model": "gpt-4o"}, "model"),
])
def test_what_completions_cannot_do_is_a_400_naming_its_field(client, extra, param):
    with pytest.raises(Exception) as caught:
        client.completions.create(**{"model": "phi3-aipc", "prompt": "Hi", "max_tokens": 4, **extra})
    error = caught.value.body
    assert error["param"] == param and caught.value.status_code in (400, 404), error


# -- /v1/responses --------------------------------------------------------------------------------------------------

def test_a_response_from_text_with_instructions_streamed_or_not(client):
    asked = {"model": "phi3-aipc", "input": "What is the capital of France?", "instructions": "Answer briefly.",
             "max_output_tokens": 48, "temperature": 0}
    whole = client.responses.create(**asked)
    assert whole.object == "response" and whole.output_text and whole.usage.output_tokens > 0
    assert whole.status in ("completed", "incomplete") and whole.output[0].role == "assistant"
    with client.responses.stream(**asked) as stream:
        kinds = [event.type for event in stream]
    assert kinds[:2] == ["response.created", "response.in_progress"] and "response.output_text.delta" in kinds
    assert kinds[-1] == f"response.{whole.status}"
    short = client.responses.create(**{**asked, "max_output_tokens": 2})
    assert short.status == "incomplete" and short.incomplete_details.reason == "max_output_tokens"


def test_a_response_calls_a_function_and_answers_with_its_output(client):
    question = {"role": "user", "content": [{"type": "input_text", "text": "What is the weather in Oslo?"}]}
    called = client.responses.create(model="phi3-aipc", input=[question], tools=[WEATHER], tool_choice="required",
                                     max_output_tokens=48)
    call = called.output[0]
    assert call.type == "function_call" and call.name == "get_weather" and call.call_id.startswith("call_")
    assert isinstance(json.loads(call.arguments)["city"], str)
    final = client.responses.create(model="phi3-aipc", tools=[WEATHER], tool_choice="none", max_output_tokens=48,
                                    input=[question, {"type": "function_call", "call_id": call.call_id,
                                                      "name": call.name, "arguments": call.arguments},
                                           {"type": "function_call_output", "call_id": call.call_id,
                                            "output": json.dumps({"sky": "snow", "temperature": -3})}])
    assert final.output[0].type == "message" and final.output_text.strip()
    bare = client.responses.create(model="phi3-aipc", input=[question], max_output_tokens=1)
    assert final.usage.input_tokens > bare.usage.input_tokens + 15  # the call and its output were read


def test_a_response_held_to_a_json_schema_parses(client):
    out = client.responses.create(model="phi3-aipc", input='Answer with the keys "city" and "country" for Rome.',
                                  text={"format": {"type": "json_schema", "name": "city", "schema": CITY}},
                                  max_output_tokens=128, temperature=0)
    assert valid_city(out.output_text), out.output_text


def test_langchain_talks_to_the_responses_api(live):
    llm = ChatOpenAI(base_url=f"{live.url}/v1", api_key="not-needed-on-loopback", model="phi3-aipc",
                     use_responses_api=True, max_retries=0, max_tokens=32, timeout=120)
    message = llm.invoke("What is the capital of France?")
    assert message.text.strip()


@pytest.mark.parametrize(("body", "param", "says"), [
    ({"input": "Hi", "previous_response_id": "resp_1"}, "previous_response_id", "stateless"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "data:image/png;base64,AA"}]}]},
     "input.0", "reads text only"),
    ({"input": [{"type": "web_search_call"}]}, "input.0", "not read here"),
    ({"input": "Hi", "tool_choice": "required"}, "tool_choice", "needs tools"),
    ({"input": "Hi", "text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format", "needs a schema"),
])
def test_what_responses_cannot_do_is_a_400_naming_its_field(live, body, param, says):
    answer = httpx.post(f"{live.url}/v1/responses", json={"model": "phi3-aipc", **body}, timeout=60)
    error = answer.json()["error"]
    assert answer.status_code == 400 and error["param"] == param and says in error["message"], error


def test_the_new_routes_answer_a_wrong_method_with_405(live):
    for path in ("/v1/completions", "/v1/responses"):
        answer = httpx.get(live.url + path, timeout=10)
        assert answer.status_code == 405 and answer.json()["error"]["code"] == "method_not_allowed"


def test_a_bad_response_request_never_reaches_a_5xx(client):
    with pytest.raises(BadRequestError):
        client.responses.create(model="phi3-aipc", input="Hi", temperature=5)
