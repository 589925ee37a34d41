"""The engine seam when something goes wrong: bad sampling values, an engine's own error, the context
budget at its edges, stop strings that span tokens, and sampled answers that must differ."""

from __future__ import annotations

import json
import math
import shutil
import threading

import pytest

from models.engines import EngineSpec, Sampling, load
from models.engines.base import StopFilter, pushed
from models.errors import EngineError, InvalidSampling, InvalidText
from tests.support.engines import engine_params, open_engine

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.mark.parametrize(("field", "value"), [
    ("temperature", math.nan), ("temperature", -0.5), ("temperature", math.inf), ("temperature", "hot"),
    ("top_p", 0.0), ("top_p", 1.5), ("top_p", math.nan), ("top_k", -1), ("top_k", 2.5),
    ("max_new_tokens", 0), ("max_new_tokens", -3), ("max_new_tokens", math.nan), ("max_new_tokens", True),
    ("repetition_penalty", 0.0), ("seed", -1), ("seed", 2**40), ("seed", 1.5),
    ("frequency_penalty", 2.5), ("presence_penalty", -3), ("presence_penalty", math.nan),
    ("stop", "abc"), ("stop", ("",)), ("stop", (1, 2)),
])
def test_bad_sampling_values_are_refused_at_the_boundary_naming_the_field(field, value):
    with pytest.raises(InvalidSampling, match=field):
        Sampling(**{field: value})


def test_values_the_engines_cannot_take_are_refused_naming_the_field_and_tiny_temperatures_are_greedy():
    with pytest.raises(InvalidSampling, match="32-bit floats") as caught:
        Sampling(top_p=1e-320)  # positive, but 0 as a 32-bit float
    assert caught.value.param == "top_p"
    assert Sampling(top_p=1e-30).top_p == 1e-30 and Sampling(temperature=1e-300).greedy
    with pytest.raises(InvalidText, match="lone surrogate") as caught:
        Sampling(stop=("ok", "\udc00"))
    assert caught.value.param == "stop"


def test_an_engine_that_does_not_report_logprobs_refuses_them_by_name(engine):
    # OpenVINO GenAI's LLMPipeline streams text: the batching engine (the CPU default) is the one that reports them
    with pytest.raises(InvalidSampling, match="logprobs: OpenVINO GenAI does not report") as caught:
        engine.stream(QUESTION, Sampling(max_new_tokens=4, logprobs=True)).text()
    assert caught.value.param == "logprobs"


def test_text_that_is_not_valid_unicode_never_reaches_the_engine(engine):
    for messages in ([{"role": "user", "content": "\ud83d hi"}],
                     [{"role": "system", "content": "be \udfff kind"}, *QUESTION]):
        with pytest.raises(InvalidText, match="not valid Unicode text: a lone surrogate") as caught:
            engine.stream(messages, Sampling(max_new_tokens=8)).text()
        assert caught.value.param == "messages" and isinstance(caught.value, ValueError)
    assert "Paris" in engine.stream(QUESTION, Sampling(max_new_tokens=32)).text()
    assert engine.stream([{"role": "user", "content": "\U0001F600 Say hi"}], Sampling(max_new_tokens=4)).text()


def test_sampled_answers_differ_unless_a_seed_is_given(engine):
    # OpenVINO GenAI seeds every request with rng_seed=0 unless told otherwise: without a fresh seed
    # per request, "Regenerate" would give the same answer every time.
    ask = [{"role": "user", "content": "Tell me a story about a cat."}]
    free = Sampling(temperature=1.0, max_new_tokens=32)
    replies = [engine.stream(ask, free) for _ in range(3)]
    texts = [r.text() for r in replies]
    assert len(set(texts)) == 3, texts
    seeded = replies[0].seed
    assert seeded is not None  # the seed used is kept, so an answer can be repeated
    again = engine.stream(ask, Sampling(temperature=1.0, max_new_tokens=32, seed=seeded)).text()
    assert again == texts[0]


def test_an_engines_own_error_becomes_the_apps_error_and_the_next_question_works(engine, monkeypatch):
    def rejected(sampling):  # a configuration OpenVINO GenAI itself refuses, inside generate()
        config = engine._pipe.get_generation_config()
        config.max_new_tokens = 0
        config.max_length = 0
        return config

    monkeypatch.setattr(engine, "_generation_config", rejected)
    with pytest.raises(EngineError, match=r"OpenVINO GenAI failed while answering on CPU: .*max_new_tokens"):
        engine.stream(QUESTION, Sampling(max_new_tokens=16)).text()
    monkeypatch.undo()
    assert "Paris" in engine.stream(QUESTION, Sampling(max_new_tokens=32)).text()


def test_a_worker_that_raises_ends_the_stream_with_its_error_instead_of_hanging():
    cancel = threading.Event()

    def run(emit):
        emit("partial ")
        raise RuntimeError("device lost")

    seen = []
    with pytest.raises(RuntimeError, match="device lost"):
        for piece in pushed(run, cancel):
            seen.append(piece)
    assert seen == ["partial "]
    assert threading.active_count() < 50  # the worker ended (joined), nothing left waiting


def test_stop_strings_never_show_their_first_part():
    f = StopFilter(("capital of",))
    shown = [f.feed(p) for p in ["The", " capital", " of", " France"]]
    assert "".join(shown) == "The " and f.hit
    f = StopFilter(("###",))
    assert "".join(f.feed(p) for p in ["a #", "b"]) + f.flush() == "a #b"  # a false start is shown in the end


@pytest.fixture(params=engine_params())
def any_engine(request, embedded_gguf, app_home):
    eng = open_engine(request, embedded_gguf, app_home, context_length=512)
    yield eng
    eng.close()


def _long_chat(turns: int = 30):
    history = []
    for i in range(turns):
        history += [{"role": "user", "content": f"Tell me a fact, number {i}."},
                    {"role": "assistant", "content": f"Fact {i}: water is wet and the sky is blue."}]
    return history + [{"role": "user", "content": "Count from one to one thousand, in words."}]


def test_the_largest_answer_the_page_offers_fits_the_window_with_a_long_chat(any_engine):
    # The page offers answers up to 2048 tokens; with a 512-token window the prompt and the answer
    # together must stay inside it, on every engine.
    reply = any_engine.stream(_long_chat(), Sampling(max_new_tokens=2048))
    text = reply.text()
    assert text
    assert reply.stats.prompt_tokens + reply.stats.generated_tokens <= 512
    assert any("left out" in n for n in reply.notices)


@pytest.mark.slow
def test_onnx_runtime_genai_keeps_inside_the_models_own_window(phi3_models, tmp_path, app_home):
    # A model whose genai_config says 1024 tokens, run with the catalog's 4096: ONNX Runtime GenAI
    # refuses max_length > context_length ("max_length (2949) cannot be greater than ..."); the budget
    # must follow the model's own window.
    small = tmp_path / "ort-1k"
    shutil.copytree(phi3_models.exports["onnx-int4-cpu"], small)
    cfg = json.loads((small / "genai_config.json").read_text())
    cfg["model"]["context_length"] = 1024
    (small / "genai_config.json").write_text(json.dumps(cfg))
    eng = load(EngineSpec(path=str(small), engine="onnxruntime-genai", device="cpu", label="ort-1k",
                          context_length=4096))
    try:
        reply = eng.stream(_long_chat(40), Sampling(max_new_tokens=2048))
        assert reply.text()
        assert reply.stats.prompt_tokens + reply.stats.generated_tokens <= 1024
        assert "Paris" in eng.stream(QUESTION, Sampling(max_new_tokens=32)).text()
    finally:
        eng.close()


# Mistral's published check (mistralai/Mistral-7B-Instruct-v0.2 tokenizer_config.json): roles must alternate, so a
# system message is refused. (OpenVINO GenAI renders such a template by folding the system message into the first
# user turn, so only ONNX Runtime GenAI meets this.)
ALTERNATE = ("{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception("
             "'Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
             "<|user|>{{ m['content'] }}<|end|>{% endfor %}<|assistant|>")


@pytest.mark.slow
def test_a_chat_template_that_rejects_the_messages_is_the_askers_error(phi3_models, tmp_path):
    """Issue 20: token counting ran outside the engine-error wrapper, so a template's raise_exception ended in a
    bare 500 and a traceback. It is a ValueError naming the messages, in the template's own words."""
    strict = tmp_path / "ort-alternate"
    shutil.copytree(phi3_models.exports["onnx-int4-cpu"], strict)
    cfg = json.loads((strict / "tokenizer_config.json").read_text())
    cfg["chat_template"] = ALTERNATE
    (strict / "tokenizer_config.json").write_text(json.dumps(cfg))
    (strict / "chat_template.jinja").write_text(ALTERNATE)
    eng = load(EngineSpec(path=str(strict), engine="onnxruntime-genai", device="cpu", label="ort-alternate",
                          context_length=4096))
    try:
        with pytest.raises(InvalidText, match="chat template does not take these messages: Conversation roles "
                                              "must alternate") as caught:
            eng.stream([{"role": "system", "content": "Be brief."}, *QUESTION], Sampling(max_new_tokens=8)).text()
        assert caught.value.param == "messages" and isinstance(caught.value, ValueError)
        assert eng.stream(QUESTION, Sampling(max_new_tokens=4)).text()  # what the template takes still answers
    finally:
        eng.close()


@pytest.mark.slow
def test_an_engine_without_penalties_refuses_them_by_name(phi3_models):
    eng = load(EngineSpec(path=str(phi3_models.exports["onnx-int4-cpu"]), engine="onnxruntime-genai", device="cpu",
                          label="ort-int4", context_length=4096))
    try:
        for name in ("frequency_penalty", "presence_penalty"):
            with pytest.raises(InvalidSampling, match=f"{name}: ONNX Runtime GenAI has no") as caught:
                eng.stream(QUESTION, Sampling(max_new_tokens=8, **{name: 1.0})).text()
            assert caught.value.param == name
        assert eng.stream(QUESTION, Sampling(max_new_tokens=4, frequency_penalty=0.0)).text()
    finally:
        eng.close()
