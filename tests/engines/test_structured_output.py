"""JSON answers (Sampling.response_format) through the engine seam, on real models: the embedded SmolLM2 on both
OpenVINO GenAI adapters (LLMPipeline, and ContinuousBatchingPipeline, the CPU default) and ONNX Runtime GenAI on
the Phi-3-architecture test model. A 135M model asked for JSON in words answers with code fences, Python or
extra keys: the same questions with the schema must all parse and validate."""

from __future__ import annotations

import json
import threading

import pytest

from models.engines import EngineSpec, JsonSchema, ResponseFormatError, Sampling, load
from models.engines.base import Engine
from models.engines.npu_library import NpuLibraryEngine
from models.tool_calls import Tool, ToolUse
from tests.support.json_answers import CITY, PLACES, ask, json_prefix, valid_city

ADAPTERS = {"single": 1, "batching": 4}


@pytest.fixture(scope="module", params=list(ADAPTERS))
def engine(request, embedded_gguf, app_home):
    parallel = ADAPTERS[request.param]
    eng = load(EngineSpec(path=str(embedded_gguf), engine="openvino-genai", device="CPU", label="SmolLM2-135M",
                          context_length=4096, cache_dir=str(app_home / "compiled" / f"json-{parallel}"),
                          parallel=parallel, options={"gguf_keep_ir": True}))
    assert type(eng).__name__ == ("OpenVinoGenAIEngine" if parallel == 1 else "BatchingOpenVinoEngine")
    yield eng
    eng.close()


def held(reply, valid) -> bool:
    """What a schema guarantees on every CPU: an answer that ended is valid; one cut at the length limit is the
    start of JSON, never text outside it."""
    text = reply.text()
    if reply.stats.finish_reason == "stop":
        return valid(text)
    return text.lstrip().startswith("{") and json_prefix(text)


def test_a_schema_holds_every_answer_that_free_text_breaks(engine):
    schema = JsonSchema.of(CITY, "city")
    free = [engine.stream(ask(p), Sampling(max_new_tokens=64)).text() for p in PLACES]
    replies = [engine.stream(ask(p), Sampling(max_new_tokens=64, response_format=schema)) for p in PLACES]
    texts = [r.text() for r in replies]
    print("free:", free, "\nheld:", texts)
    assert not all(valid_city(t) for t in free)  # without the constraint the model fails (here: every time)
    assert all(held(r, valid_city) for r in replies), texts
    ended = [(p, t) for p, r, t in zip(PLACES, replies, texts, strict=True) if r.stats.finish_reason == "stop"]
    assert len(ended) >= len(PLACES) // 2, texts
    assert all(p in json.loads(t)["city"] for p, t in ended)  # still the model's answer


def test_json_object_means_any_json_object(engine):
    replies = [engine.stream(ask(p), Sampling(max_new_tokens=64, response_format=JsonSchema.any_object()))
               for p in PLACES]
    texts = [r.text() for r in replies]
    print(texts)
    assert all(held(r, lambda t: isinstance(json.loads(t), dict)) for r in replies), texts
    assert sum(r.stats.finish_reason == "stop" for r in replies) >= len(PLACES) // 2, texts


CAPITALS = PLACES + ["Madrid", "Lisbon", "Vienna", "Prague", "Warsaw", "Oslo", "Cairo", "Nairobi", "Lima", "Bogota",
                     "Ottawa", "Canberra", "Seoul", "Hanoi", "Delhi", "Dublin"]


def loose_whitespace(text: str) -> bool:
    """A newline, tab or two spaces between JSON tokens (inside strings it is the model's text)."""
    outside, in_string, escaped = [], False, False
    for ch in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (ch == "\\", ch != '"')
        else:
            in_string = ch == '"'
            outside.append(ch if not in_string else "_")
    bare = "".join(outside)
    return any(w in bare for w in ("\n", "\t", "  "))


def test_schema_answers_parse_every_time_at_temperature_0(engine):
    """Issue 20: the grammar allowed any whitespace, and the greedy model wrote newlines until the limit. Now at most
    one space sits between JSON tokens: 20 schema answers at temperature 0 all end and parse; `json_object` answers
    (no schema to bound their content) carry no whitespace runs either."""
    schema = JsonSchema.of(CITY, "city")
    texts = [engine.stream(ask(p), Sampling(max_new_tokens=128, response_format=schema)).text() for p in CAPITALS]
    print(texts)
    assert all(valid_city(t) for t in texts), [t for t in texts if not valid_city(t)]
    objects = [engine.stream(ask(p), Sampling(max_new_tokens=64, response_format=JsonSchema.any_object())).text()
               for p in CAPITALS[:8]]
    print(objects)
    assert not any(loose_whitespace(t) for t in texts + objects), [t for t in texts + objects if loose_whitespace(t)]


def test_a_schema_the_engine_rejects_is_that_requests_error_only(engine):
    story = engine.stream([{"role": "user", "content": "Tell me a story about a dragon."}], Sampling(max_new_tokens=48))
    running = iter(story)
    next(running)  # a generation is in the engine while the bad schema arrives
    outcome: dict = {}

    def bad():
        try:
            engine.stream(ask("Paris"), Sampling(max_new_tokens=16, response_format=JsonSchema.of({"type": "foo"}))
                          ).text()
        except ResponseFormatError as err:
            outcome["error"] = str(err)

    t = threading.Thread(target=bad)
    t.start()
    rest = "".join(running)
    t.join(60)
    assert 'Unsupported type "foo"' in outcome["error"] and ".cc:" not in outcome["error"], outcome
    assert story.stats.finish_reason == "length" and story.stats.generated_tokens == 48, rest  # undisturbed
    assert "Paris" in engine.stream([{"role": "user", "content": "What is the capital of France?"}],
                                    Sampling(max_new_tokens=24)).text()
    assert valid_city(engine.stream(ask("Rome"), Sampling(max_new_tokens=64,
                                                          response_format=JsonSchema.of(CITY))).text())


def test_a_known_schema_joins_the_batch_while_others_run(engine):
    schema = JsonSchema.of(CITY)
    engine.stream(ask("Paris"), Sampling(max_new_tokens=64, response_format=schema)).text()  # tried once
    replies = [None] * 3
    start = threading.Barrier(3)

    def run(i, messages, sampling):
        start.wait()
        replies[i] = engine.stream(messages, sampling)
        replies[i].text()

    asks = [(ask("Tokyo"), Sampling(max_new_tokens=64, response_format=schema)),
            ([{"role": "user", "content": "Tell me a story."}], Sampling(max_new_tokens=32)),
            (ask("Berlin"), Sampling(max_new_tokens=64, response_format=schema))]
    threads = [threading.Thread(target=run, args=(i, *a)) for i, a in enumerate(asks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert valid_city(replies[0].text()) and valid_city(replies[2].text())
    assert replies[1].stats.generated_tokens == 32 and not replies[1].text().lstrip().startswith("{")


# -- pure checks and the engines that cannot ------------------------------------------------------------------------

@pytest.mark.parametrize(("make", "says"), [
    (lambda: JsonSchema("[1, 2]"), "must be a JSON object"),
    (lambda: JsonSchema("{not json"), "not valid JSON"),
    (lambda: JsonSchema.of(["type", "object"]), "must be a JSON object"),
    (lambda: JsonSchema.of({"const": float("nan")}), "cannot be written as JSON"),
    (lambda: JsonSchema("{}" + " " * 100_000), "longer than"),
    (lambda: JsonSchema.of({"properties": {"\ud83d": {"type": "string"}}}), "lone surrogate"),  # was a 503
    (lambda: Sampling(response_format='{"type": "object"}'), "must be a JsonSchema"),
])
def test_a_malformed_schema_never_reaches_an_engine(make, says):
    with pytest.raises(ResponseFormatError, match=says) as caught:
        make()
    assert caught.value.param == "response_format" and isinstance(caught.value, ValueError)


def test_json_object_is_the_any_object_schema_and_key_order_is_kept():
    assert json.loads(JsonSchema.any_object().schema) == {"type": "object"}
    assert list(json.loads(JsonSchema.of({"properties": {"b": {}, "a": {}}}).schema)["properties"]) == ["b", "a"]


class _NoStructuredOutput(Engine):
    """An engine without structured output (as the NPU library, which cannot run here): records what reaches it."""

    name = "Plain engine"
    calls: list = []

    def count_tokens(self, messages):
        return 10

    def _generate(self, messages, sampling, reply):
        self.calls.append(sampling)
        yield "text"


def test_an_engine_without_structured_output_refuses_before_generating():
    assert NpuLibraryEngine.structured_output is False
    eng = _NoStructuredOutput(EngineSpec(path="", engine="x", device="NPU", label="x"))
    with pytest.raises(ResponseFormatError, match="Plain engine cannot hold an answer to a JSON schema"):
        eng.stream([{"role": "user", "content": "hi"}], Sampling(response_format=JsonSchema.any_object())).text()
    assert eng.calls == []
    assert eng.stream([{"role": "user", "content": "hi"}], Sampling()).text() == "text"


# -- ONNX Runtime GenAI (0.18.0 has guidance on its CPU build) on the Phi-3-architecture test model ------------------

@pytest.fixture(scope="module")
def ort(phi3_models, app_home):
    eng = load(EngineSpec(path=str(phi3_models.exports["onnx-int4-cpu"]), engine="onnxruntime-genai", device="cpu",
                          label="ort-int4", context_length=4096))
    yield eng
    eng.close()


def test_onnx_runtime_genai_holds_answers_to_a_schema(ort):
    schema = JsonSchema.of(CITY)
    replies = [ort.stream(ask(p), Sampling(max_new_tokens=64, response_format=schema)) for p in PLACES]
    held_texts = [r.text() for r in replies]
    free = [ort.stream(ask(p), Sampling(max_new_tokens=64)).text() for p in PLACES]
    print("free:", free, "\nheld:", held_texts)
    assert all(held(r, valid_city) for r in replies), held_texts
    assert sum(r.stats.finish_reason == "stop" for r in replies) >= len(PLACES) // 2, held_texts
    assert not all(valid_city(t) for t in free)
    assert not any(loose_whitespace(t) for t in held_texts), held_texts
    with pytest.raises(ResponseFormatError, match="ONNX Runtime GenAI cannot hold an answer to this JSON schema"):
        ort.stream(ask("Paris"), Sampling(max_new_tokens=8, response_format=JsonSchema.of({"type": "foo"}))).text()
    assert "Paris" in ort.stream([{"role": "user", "content": "What is the capital of France?"}],
                                 Sampling(max_new_tokens=24)).text()


def test_loose_whitespace_is_told_outside_strings_only():
    assert loose_whitespace('{\n  "city": "Paris"}') and loose_whitespace('{"a":  1}')
    assert not loose_whitespace('{ "city": "Paris  \\n x", "b": [1, 2] }')


WEATHER = Tool("get_weather", "The weather in a city", {
    "type": "object", "additionalProperties": False, "required": ["city", "unit"],
    "properties": {"city": {"type": "string", "maxLength": 40}, "unit": {"enum": ["celsius", "fahrenheit"]}}})


def forced_call_validates(eng) -> None:
    """The tool path on an engine (the API's tests drive it on the embedded model): the call the grammar holds parses
    into the function's name and arguments valid against its parameters."""
    use = ToolUse((WEATHER, Tool("get_time")), "function", "get_weather")
    chat = use.prompt([{"role": "user", "content": "What is the weather in Paris?"}])
    answer = use.read(eng.stream(chat, Sampling(max_new_tokens=64, response_format=use.schema())).text())
    assert answer.content is None and answer.calls[0].name == "get_weather", answer
    arguments = json.loads(answer.calls[0].arguments)
    assert set(arguments) == {"city", "unit"} and arguments["unit"] in ("celsius", "fahrenheit")


def test_a_forced_tool_call_validates_on_openvino_genai(engine):
    forced_call_validates(engine)


def test_a_forced_tool_call_validates_on_onnx_runtime_genai(ort):
    forced_call_validates(ort)


def test_json_prefix_tells_a_cut_answer_from_text():
    for cut in ('{"city": "Par', '{"city": "Paris", "map": {"city"', '{"a": [1, 2', '{"a": tr', '{"a": 1.',
                '{\n\n\n\n\n\n\n\n', '{"city": "Paris",\n  ', '{"a": "x\\"', '{"a": 1}'):
        assert json_prefix(cut), cut
    for text in ("Sure! {", '{"a": 1}}', "```json\n{", '{"a" "b"', "{'a': 1}"):
        assert not json_prefix(text), text
