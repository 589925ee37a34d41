"""The OpenAI-compatible API on the app's own port, driven by the official `openai` client and by raw HTTP:
right answers, usage that adds up, stop and max_tokens honoured, streaming as OpenAI streams, concurrent
clients, a client that goes away, and every bad request answered with a 4xx in OpenAI's shape."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from openai import BadRequestError, NotFoundError, OpenAI

from tests.support.json_answers import CITY, json_prefix, valid_city
from tests.support.json_answers import ask as city_ask
from tests.support.live_api import serving

FRANCE = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def live(embedded_gguf, app_home):
    with serving(app_home, "--max-request-bytes", "100000") as app:
        yield app


def test_models_lists_the_running_model_first(client):
    models = client.models.list().data
    assert models[0].id == "smollm2-135m-embedded"
    assert all(m.object == "model" and m.owned_by and m.created > 0 for m in models)


def test_a_chat_completion_answers_and_its_usage_adds_up(client):
    out = client.chat.completions.create(model="smollm2-135m-embedded", messages=FRANCE, temperature=0)
    assert "Paris" in out.choices[0].message.content
    assert out.choices[0].finish_reason == "stop" and out.object == "chat.completion"
    u = out.usage
    assert u.prompt_tokens > 5 and u.completion_tokens > 0 and u.total_tokens == u.prompt_tokens + u.completion_tokens


def test_the_model_field_may_be_left_out_and_content_may_be_text_parts(client):
    out = client.chat.completions.create(model="", temperature=0, messages=[
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": [{"type": "text", "text": "What is the capital of "}, {"type": "text",
                                                                                          "text": "France?"}]}])
    assert "Paris" in out.choices[0].message.content


def test_streaming_answers_as_openai_streams(client):
    chunks = list(client.chat.completions.create(model="smollm2-135m-embedded", messages=FRANCE, temperature=0,
                                                 stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Paris" in text and len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 3
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finish) == 1 and finish[0].choices[0].finish_reason == "stop"
    assert finish[0].choices[0].delta.content is None  # the finish chunk has an empty delta
    usage = chunks[-1]
    assert usage.choices == [] and usage.usage.completion_tokens > 0


def test_the_raw_stream_ends_with_done(live):
    with httpx.stream("POST", f"{live.url}/v1/chat/completions", timeout=60,
                      json={"messages": FRANCE, "stream": True, "temperature": 0}) as r:
        lines = [ln for ln in r.iter_lines() if ln]
    assert r.headers["content-type"].startswith("text/event-stream")
    assert all(ln.startswith("data: ") for ln in lines) and lines[-1] == "data: [DONE]"


def test_stop_and_max_tokens_are_honoured(client):
    full = client.chat.completions.create(model="smollm2-135m-embedded", messages=FRANCE, temperature=0)
    cut = client.chat.completions.create(model="smollm2-135m-embedded", messages=FRANCE, temperature=0,
                                         stop=["Paris"])
    assert "Paris" in full.choices[0].message.content and "Paris" not in cut.choices[0].message.content
    short = client.chat.completions.create(model="smollm2-135m-embedded", temperature=0, max_tokens=5,
                                           messages=[{"role": "user", "content": "Tell me a long story."}])
    assert short.choices[0].finish_reason == "length" and short.usage.completion_tokens == 5


def test_two_clients_at_once_each_get_their_own_answer(live):
    answers: dict[str, str] = {}

    def ask(country: str) -> None:
        c = OpenAI(base_url=f"{live.url}/v1", api_key="x", max_retries=0, timeout=120)
        out = c.chat.completions.create(model="smollm2-135m-embedded", temperature=0, messages=[
            {"role": "user", "content": f"What is the capital of {country}?"}])
        answers[country] = out.choices[0].message.content

    threads = [threading.Thread(target=ask, args=(c,)) for c in ("France", "Germany")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert "Paris" in answers["France"] and "Berlin" in answers["Germany"]
    assert "Berlin" not in answers["France"] and "Paris" not in answers["Germany"]


def test_a_client_that_goes_away_mid_stream_stops_the_generation(live, client):
    long_ask = {"messages": [{"role": "user", "content": "Write a very long story about a dragon."}],
                "stream": True, "max_tokens": 3000, "temperature": 0}
    with httpx.stream("POST", f"{live.url}/v1/chat/completions", json=long_ask, timeout=60) as r:
        for i, _ in enumerate(r.iter_lines()):
            if i > 5:
                break  # the client goes away: closing the connection
    started = time.perf_counter()
    out = client.chat.completions.create(model="smollm2-135m-embedded", messages=FRANCE, temperature=0)
    # 3000 tokens would take most of a minute here; the next request is served at once instead
    assert time.perf_counter() - started < 15 and "Paris" in out.choices[0].message.content


def _error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert body["error"]["message"]
    return body["error"]


@pytest.mark.parametrize(("body", "status", "says"), [
    ("{not json", 400, "not valid JSON"),
    ("[1, 2]", 400, "JSON object"),
    ({"messages": []}, 400, "messages"),
    ({"messages": "hi"}, 400, "messages"),
    ({"messages": [{"role": "user"}]}, 400, "some text"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, 400, "role"),
    ({"messages": FRANCE, "temperature": 5}, 400, "temperature"),
    ({"messages": FRANCE, "temperature": "hot"}, 400, "temperature"),
    ({"messages": FRANCE, "top_p": 1.5}, 400, "top_p"),  # 0 is mapped to greedy (tests/webui/test_api_defaults.py)
    ({"messages": FRANCE, "max_tokens": 0}, 400, "max_tokens"),
    ({"messages": FRANCE, "max_tokens": "many"}, 400, "max_tokens"),
    ({"messages": FRANCE, "n": 9}, 400, "n"),
    ({"messages": FRANCE, "seed": 2**64}, 400, "seed"),  # beyond OpenAI's range; a negative one means a new seed
    ({"messages": FRANCE, "stop": ["x"] * 17}, 400, "stop"),  # an empty stop string is ignored, as OpenAI does
    ({"messages": FRANCE, "stream": "yes please"}, 400, "stream"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, 400, "content"),
    ({"messages": [{"role": "user", "content": "word " * 9000}]}, 400, "window"),
    ({"messages": FRANCE, "model": "gpt-4o"}, 404, "smollm2-135m-embedded"),
    ({"messages": [{"role": "user", "content": "x" * 150000}]}, 413, "larger than 100000 bytes"),
])
def test_bad_requests_get_a_4xx_in_openais_shape_and_the_server_goes_on(live, client, body, status, says):
    content = body if isinstance(body, str) else json.dumps(body)
    r = httpx.post(f"{live.url}/v1/chat/completions", content=content, timeout=60,
                   headers={"Content-Type": "application/json"})
    assert says.lower() in _error(r, status)["message"].lower()
    out = client.chat.completions.create(model="smollm2-135m-embedded", messages=FRANCE, temperature=0,
                                         max_tokens=16)
    assert out.choices[0].message.content


def test_the_openai_client_raises_its_own_errors_for_them(client):
    with pytest.raises(BadRequestError, match="temperature"):
        client.chat.completions.create(model="smollm2-135m-embedded", messages=FRANCE, temperature=7)
    with pytest.raises(NotFoundError, match="not the one running here"):
        client.chat.completions.create(model="phi-9", messages=FRANCE)


def test_wrong_methods_and_unknown_routes_under_v1_are_in_openais_shape(live):
    _error(httpx.get(f"{live.url}/v1/chat/completions", timeout=10), 405)
    _error(httpx.get(f"{live.url}/v1/embeddings", timeout=10), 404)


def test_eight_clients_at_once_each_get_the_answer_to_their_own_question(live):
    # The engine batches up to --parallel answers (default 4 on the CPU); the rest wait in the shared queue.
    capitals = {"France": "Paris", "Germany": "Berlin", "Japan": "Tokyo", "Italy": "Rome"}
    asks = [country for country in capitals for _ in range(2)]
    answers: dict[int, str] = {}

    def ask(i: int, country: str) -> None:
        c = OpenAI(base_url=f"{live.url}/v1", api_key="x", max_retries=0, timeout=180)
        out = c.chat.completions.create(model="", temperature=0, max_tokens=48, messages=[
            {"role": "user", "content": f"What is the capital of {country}?"}])
        answers[i] = out.choices[0].message.content

    threads = [threading.Thread(target=ask, args=(i, c)) for i, c in enumerate(asks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert len(answers) == 8
    for i, country in enumerate(asks):
        assert capitals[country] in answers[i], (country, answers[i])
        assert not [city for other, city in capitals.items() if other != country and city in answers[i]]


def test_langchain_chats_and_streams_through_its_openai_integration(live):
    """LangChain's ChatOpenAI, as a user would point it at this app: a chat, a stream, and a two-turn history."""
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=f"{live.url}/v1", api_key="not-needed-on-loopback", model="smollm2-135m-embedded",
                     temperature=0, max_tokens=48, max_retries=0, timeout=120, stream_usage=True)
    answer = llm.invoke([SystemMessage("You are a helpful assistant."), HumanMessage("What is the capital of France?")])
    assert "Paris" in answer.content
    assert answer.usage_metadata["total_tokens"] == answer.usage_metadata["input_tokens"] \
        + answer.usage_metadata["output_tokens"] and answer.response_metadata["finish_reason"] == "stop"
    pieces = list(llm.stream("What is the capital of Italy?"))
    assert len(pieces) >= 3 and "Rome" in "".join(p.content for p in pieces)
    assert any(p.usage_metadata and p.usage_metadata["output_tokens"] > 0 for p in pieces)  # the usage chunk
    history = [HumanMessage("What is the capital of France?"), AIMessage(answer.content),
               HumanMessage("And of Germany?")]
    assert "Berlin" in llm.invoke(history).content


# -- requests as other tools send them (replayed from their source; the tools themselves do not run here) --------
# Open WebUI 0.12.4 (backend/open_webui/routers/openai.py, utils/payload.py): aiohttp, a JSON content type even
# on GET, `tools` with every chat from the page, non-streamed "task" calls that need exactly one choice.
# Continue (core/llm/llms/OpenAI.ts, packages/openai-adapters, commit d0a3c0b): the openai JS SDK, localhost
# rewritten to 127.0.0.1, an `api-key` header, a long system message, max_tokens 4096, stream_options always;
# it drops the text of any chunk that carries a usage, so only the last chunk may.
OPEN_WEBUI_HEADERS = {"Authorization": "Bearer sk-test", "Content-Type": "application/json", "Accept": "*/*",
                      "Accept-Encoding": "gzip, deflate, br", "User-Agent": "Python/3.11 aiohttp/3.14.5"}
CONTINUE_HEADERS = {"accept": "application/json", "authorization": "Bearer sk-test",
                    "content-type": "application/json", "user-agent": "OpenAI/JS 5.23.2", "x-stainless-lang": "js",
                    "x-stainless-package-version": "5.23.2", "x-stainless-os": "Linux", "x-stainless-arch": "x64",
                    "x-stainless-runtime": "node", "x-stainless-runtime-version": "v20.19.0",
                    "x-stainless-retry-count": "0", "x-stainless-timeout": "600", "api-key": ""}


def _sse(answer: httpx.Response) -> tuple[list[dict], bool]:
    lines = [line for line in answer.text.split("\n") if line.startswith("data: ")]
    done = bool(lines) and lines[-1] == "data: [DONE]"
    return [json.loads(line[6:]) for line in lines if line != "data: [DONE]"], done


def test_open_webui_lists_models_streams_a_chat_with_tools_and_runs_its_title_task(live):
    models = httpx.get(f"{live.url}/v1/models", headers=OPEN_WEBUI_HEADERS, timeout=30)
    assert models.status_code == 200 and models.headers["content-type"].startswith("application/json")
    assert models.json()["data"][0]["id"] == "smollm2-135m-embedded"
    tools = [{"type": "function", "function": {"name": "get_current_timestamp",
                                               "description": "Get the current Unix timestamp in seconds.",
                                               "parameters": {"type": "object", "properties": {}}}}]
    # temperature 0: a model parameter set in Open WebUI (it sends the ones set, nothing else; OpenAI's default is 1)
    chat = {"stream": True, "model": "smollm2-135m-embedded", "temperature": 0,
            "messages": [{"role": "user", "content": "What is the capital of France?"}], "tools": tools}
    answer = httpx.post(f"{live.url}/v1/chat/completions", headers=OPEN_WEBUI_HEADERS, json=chat, timeout=120)
    assert answer.status_code == 200 and "text/event-stream" in answer.headers["content-type"]  # its stream test
    chunks, done = _sse(answer)
    assert done and "Paris" in "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    title = {"model": "smollm2-135m-embedded", "stream": False, "max_tokens": 1000, "messages": [
        {"role": "user", "content": "### Task:\nGenerate a concise, 3-5 word title with an emoji summarizing the "
                                    "chat history.\n### Output:\nJSON format: { \"title\": \"your concise title "
                                    "here\" }\n### Chat History:\n<chat_history>\nUSER: What is the capital of "
                                    "France?\nASSISTANT: Paris.\n</chat_history>"}]}
    answer = httpx.post(f"{live.url}/v1/chat/completions", headers=OPEN_WEBUI_HEADERS, json=title, timeout=120)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert len(body["choices"]) == 1 and body["choices"][0]["message"]["content"].strip()


def test_continue_lists_models_and_streams_a_chat_with_its_system_message_and_4096_max_tokens(live):
    host = live.url.replace("localhost", "127.0.0.1")
    models = httpx.get(f"{host}/v1/models", headers={"Content-Type": "application/json",
                                                     "Authorization": "Bearer sk-test", "api-key": "sk-test"},
                       timeout=30)
    assert models.status_code == 200 and [m["id"] for m in models.json()["data"]][0] == "smollm2-135m-embedded"
    system = ("<important_rules>\n  You are in chat mode.\n\n  If the user asks to make changes to files offer that "
              "they can use the Apply Button on the code block, or switch to Agent Mode to make the suggested "
              "updates automatically.\n  If needed concisely explain to the user they can switch to agent mode "
              "using the Mode Selector dropdown and provide no other details.\n\n  Always include the language and "
              "file name in the info string when you write code blocks.\n</important_rules>")
    chat = {"messages": [{"role": "system", "content": system},
                         {"role": "user", "content": "Hi"}, {"role": "assistant", "content": " "},
                         {"role": "user", "content": "What is the capital of France? Answer in one sentence."}],
            "model": "smollm2-135m-embedded", "max_tokens": 4096, "stream": True, "temperature": 0,
            "stream_options": {"include_usage": True}}  # temperature: set in its completionOptions (else unsent)
    answer = httpx.post(f"{host}/v1/chat/completions", headers=CONTINUE_HEADERS, json=chat, timeout=300)
    assert answer.status_code == 200, answer.text
    chunks, done = _sse(answer)
    assert done
    with_text = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert with_text and all(c.get("usage") is None for c in with_text)  # Continue would drop these otherwise
    assert "Paris" in "".join(c["choices"][0]["delta"]["content"] for c in with_text)
    last = chunks[-1]
    assert last["choices"] == [] and last["usage"]["completion_tokens"] > 0


# -- response_format: JSON answers held by the engine's structured output -------------------------------------------
def test_response_format_json_schema_holds_every_answer_to_the_schema(client):
    fmt = {"type": "json_schema", "json_schema": {"name": "city", "schema": CITY, "strict": True}}
    places = ["Paris", "Tokyo", "Berlin", "Rome"]
    free = [client.chat.completions.create(model="", messages=city_ask(p), temperature=0, max_tokens=64)
            .choices[0].message.content for p in places]
    held = [client.chat.completions.create(model="", messages=city_ask(p), temperature=0, max_tokens=64,
                                           response_format=fmt).choices[0].message.content for p in places]
    print("free:", free, "\nheld:", held)
    assert not all(valid_city(t) for t in free)  # the model alone does not manage it
    assert all(valid_city(t) for t in held), held
    chunks = list(client.chat.completions.create(model="", messages=city_ask("Paris"), temperature=0, max_tokens=64,
                                                 response_format=fmt, stream=True))
    assert valid_city("".join(c.choices[0].delta.content or "" for c in chunks if c.choices))


def test_the_openai_clients_parse_with_a_pydantic_model_gets_a_parsed_object(client):
    from pydantic import BaseModel

    class City(BaseModel):
        city: str
        country: str

    out = client.chat.completions.parse(model="", messages=city_ask("Paris"), temperature=0, max_tokens=64,
                                        response_format=City)
    parsed = out.choices[0].message.parsed
    assert isinstance(parsed, City) and "Paris" in parsed.city


def test_response_format_json_object_and_text(client):
    """An answer that ended parses; one cut at max_tokens is the start of JSON (on some CPUs the greedy answer
    falls into a whitespace loop the grammar allows, or nests objects: issue 20), never text outside JSON."""
    ended = 0
    for city in ("Tokyo", "Paris", "Rome"):
        out = client.chat.completions.create(model="", messages=city_ask(city), temperature=0, max_tokens=64,
                                             response_format={"type": "json_object"})
        content, finish = out.choices[0].message.content, out.choices[0].finish_reason
        if finish == "stop":
            ended += 1
            assert isinstance(json.loads(content), dict), content
        else:
            assert finish == "length" and json_prefix(content), content  # cut, never text outside JSON
    assert ended >= 2
    text = client.chat.completions.create(model="", messages=FRANCE, temperature=0, response_format={"type": "text"})
    assert "Paris" in text.choices[0].message.content


@pytest.mark.parametrize(("response_format", "says"), [
    ({"type": "xml"}, "response_format.type"),
    ({"type": "json_schema"}, "needs a json_schema object"),
    ({"type": "json_schema", "json_schema": {"name": "x"}}, "response_format.json_schema.schema is required"),
    ({"type": "json_schema", "json_schema": {"schema": CITY}}, "response_format.json_schema.name is required"),
    ({"type": "json_schema", "json_schema": {"name": "x", "schema": [1, 2]}}, "response_format.json_schema.schema"),
    ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "foo"}}}, 'unsupported type "foo"'),
    ("json", "response_format"),
])
def test_a_malformed_or_unusable_response_format_is_a_400_on_response_format(live, client, response_format, says):
    r = httpx.post(f"{live.url}/v1/chat/completions", timeout=60,
                   json={"messages": FRANCE, "max_tokens": 8, "response_format": response_format})
    err = _error(r, 400)
    assert err["param"] == "response_format" and says.lower() in err["message"].lower(), err
    with pytest.raises(BadRequestError) as caught:
        client.chat.completions.create(model="", messages=FRANCE, max_tokens=8, response_format=response_format)
    assert caught.value.param == "response_format"
    assert "Paris" in client.chat.completions.create(model="", messages=FRANCE, temperature=0, max_tokens=24
                                                     ).choices[0].message.content
