"""Assisted decoding (models/engines/assisted.py) on both OpenVINO GenAI adapters: speculative decoding with a draft
model (the Phi-3-architecture test model's FP16 IR as target, its INT4 IR as draft: same tokenizer) and prompt lookup
(the embedded model on rewrite prompts). Either way a greedy answer must be the model's own, token for token; the
figures say how many tokens each step gave, and the draft's acceptance (LLMPipeline) or a lower bound of it (the
batching engine). JSON answers with a draft: the test model as built (its tokenizer larger than its output: a forced
draft refuses JSON, an automatic one gives way) and its copies padded to the tokenizer (tests/support/padded_vocab.py: JSON
answers with the draft, exact, also under glibc's heap checks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import openvino_genai as ov_genai
import pytest

from models.catalog import CatalogError, load_catalog, load_drafts, parse, parse_drafts
from models.engines import EngineSpec, JsonSchema, ReplyStats, ResponseFormatError, Sampling, load
from models.engines.assisted import Assistance, assistance, json_problem, logits_width, vocabulary_size
from models.engines.json_grammar import compact_regex
from models.engines.openvino_genai import generation_config
from tests.conftest import ROOT
from tests.support.json_answers import CITY, PLACES, valid_city
from tests.support.json_answers import ask as ask_city
from tests.support.near_tie import TIE_LOGITS, parting, same_until_near_tie

ADAPTERS = {"single": 1, "batching": 4}
TEXT = ("The quick brown fox jumps over the lazy dog. It was a sunny day in the small village near the river, and "
        "the children were playing in the fields while their parents worked.")
REWRITES = [
    [{"role": "user", "content": f"Repeat this text exactly, word for word:\n\n{TEXT}"}],
    [{"role": "user", "content": f"Rewrite this text, replacing 'fox' with 'cat':\n\n{TEXT}"}],
    [{"role": "user", "content": "Fix the spelling in this text and give it back: The quick brwn fox jumps ovr the "
                                 "lazy dog. It was a suny day in the smal village near the rivr."}],
]
QUESTIONS = [[{"role": "user", "content": q}] for q in
             ("Tell me a story about a dragon.", "What is the capital of France?", "Write a haiku about the sea.")]


def spec(path, parallel: int, cache, **options) -> EngineSpec:
    return EngineSpec(path=str(path), engine="openvino-genai", device="CPU", label="test", context_length=2048,
                      cache_dir=str(cache), parallel=parallel, options=dict(options))


# -- what the options mean (pure) ---------------------------------------------------------------------------------

def _spec(device="CPU", **options):
    return EngineSpec(path="m", engine="openvino-genai", device=device, label="m", options=options)


def test_the_options_name_the_assistance_and_where_it_cannot_run():
    assert assistance(_spec()) == (None, None)
    assert assistance(_spec(draft_path="/d", draft_label="FastDraft"))[0] == Assistance("draft", 5, "/d", "FastDraft")
    assert assistance(_spec(draft_path="/d", draft_optional=True))[0].optional  # the app's own choice: may give way
    assert assistance(_spec(prompt_lookup=True, num_assistant_tokens=3, max_ngram_size=2))[0] == \
        Assistance("prompt-lookup", 3, max_ngram_size=2)
    both, note = assistance(_spec(draft_path="/d", prompt_lookup=True))
    assert both.kind == "draft" and "prompt lookup is left out" in note
    none, note = assistance(_spec("NPU", draft_path="/d"))
    assert none is None and "NPU answers without it" in note
    assert assistance(_spec("GPU.1", prompt_lookup=True))[0].kind == "prompt-lookup"
    for bad in (0, 33, "5", True):
        with pytest.raises(ValueError, match="num_assistant_tokens"):
            assistance(_spec(prompt_lookup=True, num_assistant_tokens=bad))


def test_every_request_says_how_many_tokens_to_propose():
    # ContinuousBatchingPipeline.add_request does not default them (generate() does); prompt lookup asserts both
    plain = generation_config(ov_genai.GenerationConfig(), Sampling(max_new_tokens=8))
    assert not plain.num_assistant_tokens and not plain.is_prompt_lookup() and not plain.is_assisting_generation()
    lookup = generation_config(ov_genai.GenerationConfig(), Sampling(),
                               Assistance("prompt-lookup", 4, max_ngram_size=2))
    assert lookup.num_assistant_tokens == 4 and lookup.max_ngram_size == 2 and lookup.is_prompt_lookup()
    draft = generation_config(ov_genai.GenerationConfig(), Sampling(response_format=JsonSchema.any_object()),
                              Assistance("draft", 6, "/d"))
    assert draft.num_assistant_tokens == 6 and draft.is_assisting_generation() and not draft.is_prompt_lookup()
    assert draft.structured_output_config.regex == compact_regex('{"type": "object"}')  # compact JSON


def test_the_lower_bound_of_the_acceptance_from_tokens_and_steps():
    draft = Assistance("draft", 5, "/d")
    assert draft.accepted_at_least(1, 1) is None  # the prompt's step only: nothing proposed yet
    assert draft.accepted_at_least(11, 2) == 1.0  # 1 + (5 accepted + 1 own): every proposal taken
    assert draft.accepted_at_least(5, 5) == 0.0  # one token a step: none taken
    assert draft.accepted_at_least(23, 5) == pytest.approx(18 / 20)
    assert Assistance("prompt-lookup", 5).accepted_at_least(23, 5) is None
    stats = ReplyStats(device="CPU", model="m", ttft_s=0.1, tokens_per_s=1, prompt_tokens=1, generated_tokens=23,
                       finish_reason="stop", total_s=1, tokens_per_step=4.6)
    assert draft.notice(stats, 0.9) == "speculative decoding (draft: d): 4.6 tokens per step, at least 90% of the " \
                                      "draft's tokens accepted"
    exact = ReplyStats(**{**stats.__dict__, "draft_acceptance": 0.93})
    assert draft.notice(exact, 0.9).endswith(", 93% of the draft's tokens accepted")  # the engine's own figure first


def test_the_catalogs_drafts_resolve_and_stay_out_of_the_ranked_catalog():
    catalog, drafts = load_catalog(), load_drafts()
    assert {d.id for d in drafts} == {"phi3-mini-fastdraft-50m-int8-ov"}
    assert not {d.id for d in drafts} & {a.id for a in catalog}
    paired = [a for a in catalog if a.draft]
    assert paired and all(a.engine == "openvino-genai" and a.family.startswith("phi-3-mini") for a in paired)
    fast = drafts[0]
    assert fast.repo_id == "OpenVINO/Phi-3-mini-FastDraft-50M-int8-ov" and fast.download_bytes < 100_000_000
    entry = {"id": "x", "name": "x", "family": "x", "engine": "openvino-genai", "devices": ["cpu"], "precision": "int4",
             "quantization": "", "format": "openvino-ir", "source": "local", "download_bytes": 1,
             "run_memory_bytes": 2, "context_length": 1, "license": ""}
    with pytest.raises(CatalogError, match="is not a \\[\\[draft\\]\\]"):
        parse_drafts([], parse([{**entry, "draft": "nope"}]))
    with pytest.raises(CatalogError, match="a draft is an OpenVINO IR"):
        parse_drafts([{**entry, "id": "d", "format": "gguf"}], ())


# -- prompt lookup on the embedded model -------------------------------------------------------------------------

@pytest.fixture(scope="module", params=list(ADAPTERS))
def lookup_pair(request, embedded_gguf, app_home):
    """(plain, prompt lookup) engines of one adapter on the embedded model."""
    parallel = ADAPTERS[request.param]
    cache = app_home / "compiled" / f"lookup-{parallel}"
    plain = load(spec(embedded_gguf, parallel, cache, gguf_keep_ir=True))
    looked = load(spec(embedded_gguf, parallel, cache, gguf_keep_ir=True, prompt_lookup=True))
    assert type(plain) is type(looked) and looked.assist.kind == "prompt-lookup" and not looked.notices
    yield plain, looked
    looked.close()
    plain.close()


def test_prompt_lookup_answers_a_rewrite_as_without_it_until_a_near_tie_in_fewer_steps(lookup_pair, phi3_models):
    """Verifying several tokens in one pass rounds differently from one at a time: on an Intel Xeon the answers
    here are the same, on an AMD EPYC one of the three parted near its end ("...in the fields." against "...in
    the fields while their parents worked."). What holds on every CPU: the same tokens until the first
    near-tie, where both tokens are within a logit of the top one (tests/support/near_tie.py)."""
    plain, looked = lookup_pair
    same = 0
    for messages in REWRITES:
        alone = plain.stream(messages, Sampling(max_new_tokens=80))
        helped = looked.stream(messages, Sampling(max_new_tokens=80))
        parted = same_until_near_tie(phi3_models.hf, messages, alone.text(), helped.text())
        assert alone.stats.tokens_per_step is None and not alone.notices
        print(f"{helped.stats.tokens_per_step:.2f} tokens per step, {helped.stats.tokens_per_s:.0f} vs "
              f"{alone.stats.tokens_per_s:.0f} tokens/s, parted: {parted}:", helped.text()[:60])
        if parted is None:
            same += 1
            assert helped.stats.generated_tokens == alone.stats.generated_tokens
    assert same >= 1, "prompt lookup parted from the model's own answer on every rewrite"
    first = looked.stream(REWRITES[0], Sampling(max_new_tokens=80))
    first.text()
    assert first.stats.tokens_per_step > 1.5  # repeating the prompt: several tokens are accepted per step
    assert first.notices == [f"prompt lookup: {first.stats.tokens_per_step:.1f} tokens per step"]
    assert first.stats.draft_acceptance is None  # OpenVINO GenAI reports none for prompt lookup


def test_a_parting_at_a_clear_choice_is_no_near_tie(engine, phi3_models):
    """The near-tie measure itself, on this machine's own answer: the same text is no parting; a token the model
    would never pick there is far below the top; a parting where the answer ends is measured against its end."""
    messages = REWRITES[1]
    text = engine.stream(messages, Sampling(max_new_tokens=40)).text()
    assert parting(phi3_models.hf, messages, text, text) is None
    words = text.split(" ")
    forced = parting(phi3_models.hf, messages, text, " ".join(words[:3] + ["zebra"] + words[4:]))
    assert forced is not None and not forced.near_tie and forced.gaps[0] < 0.5 < TIE_LOGITS < forced.gaps[1]
    cut = parting(phi3_models.hf, messages, text, " ".join(words[:3]))
    assert cut is not None and cut.gaps[0] < 0.5


def test_the_parting_recorded_on_an_amd_epyc_is_a_near_tie_and_a_wrong_word_is_not(engine, phi3_models):
    """Recorded on an AMD EPYC: one token at a time answered "...in the fields while their parents worked.", prompt
    lookup "...in the fields." (0.42 logits apart in fp32); a word the model would not write fails the check."""
    text = engine.stream(REWRITES[0], Sampling(max_new_tokens=80)).text()
    head = text[:text.index("in the fields") + len("in the fields")]
    parted = same_until_near_tie(phi3_models.hf, REWRITES[0], head + " while their parents worked.", head + ".")
    assert parted is not None and parted.near_tie
    with pytest.raises(AssertionError):
        same_until_near_tie(phi3_models.hf, REWRITES[0], head + ".", head + " zebra")
    assert same_until_near_tie(phi3_models.hf, REWRITES[0], text, head, prefix=True) is None  # cut by a stop string


def test_prompt_lookup_keeps_stop_strings_sampling_and_json(lookup_pair, phi3_models):
    plain, looked = lookup_pair
    cut = looked.stream(REWRITES[0], Sampling(max_new_tokens=80, stop=("lazy",))).text()
    full = plain.stream(REWRITES[0], Sampling(max_new_tokens=80)).text()
    assert "lazy" not in cut and "lazy" in full
    same_until_near_tie(phi3_models.hf, REWRITES[0], full, cut, prefix=True)
    sampled = Sampling(max_new_tokens=24, temperature=0.8, seed=5)
    assert looked.stream(QUESTIONS[0], sampled).text() == looked.stream(QUESTIONS[0], sampled).text()
    schema = JsonSchema.of({"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}},
                            "required": ["name"], "additionalProperties": False})
    out = looked.stream([{"role": "user", "content": "Give me JSON with the name Ana."}],
                        Sampling(max_new_tokens=32, response_format=schema)).text()
    assert out.replace(" ", "").replace("\n", "") == '{"name":"Ana"}'


@pytest.mark.parametrize("parallel", list(ADAPTERS.values()), ids=list(ADAPTERS))
def test_a_draft_that_cannot_load_costs_only_itself(embedded_gguf, app_home, tmp_path, parallel):
    eng = load(spec(embedded_gguf, parallel, app_home / "compiled" / f"lookup-{parallel}", gguf_keep_ir=True,
                    draft_path=str(tmp_path / "no-draft"), draft_label="Missing"))
    try:
        assert eng.assist is None
        assert len(eng.notices) == 1 and eng.notices[0].startswith("speculative decoding (draft: Missing) could not "
                                                                   "be used") and "answers without it" in eng.notices[0]
        reply = eng.stream(QUESTIONS[1], Sampling(max_new_tokens=24))
        assert "Paris" in reply.text() and not reply.notices
    finally:
        eng.close()


# -- speculative decoding on the Phi-3-architecture test model: FP16 target, INT4 draft -----------------------------

@pytest.fixture(scope="module")
def target_alone(phi3_models, app_home):
    eng = load(spec(phi3_models.exports["openvino-fp16"], 1, app_home / "compiled" / "sd-plain"))
    yield eng
    eng.close()


@pytest.fixture(scope="module", params=list(ADAPTERS))
def with_draft(request, phi3_models, app_home):
    """A forced draft (as --draft PATH) with the test model as built: its JSON answers are refused, said at load."""
    parallel = ADAPTERS[request.param]
    eng = load(spec(phi3_models.exports["openvino-fp16"], parallel, app_home / "compiled" / f"sd-{parallel}",
                    draft_path=str(phi3_models.exports["openvino-int4"]), draft_label="INT4 test model"))
    assert eng.assist is not None and eng.assist.kind == "draft", eng.notices
    assert len(eng.notices) == 1 and eng.notices[0].startswith("JSON answers are refused while speculative decoding "
                                                               "(draft: INT4 test model) runs: "), eng.notices
    yield eng
    eng.close()


_exact: dict[str, float] = {}  # prompt -> the draft's acceptance LLMPipeline reported, for the batching engine's bound


def test_greedy_answers_with_the_draft_are_the_targets_own(target_alone, with_draft, phi3_models):
    """The same tokens as the target alone until a near-tie (tests/support/near_tie.py): a draft verifies several tokens
    in one pass, which rounds differently on some CPUs' kernels."""
    for messages in QUESTIONS + REWRITES[:1]:
        alone = target_alone.stream(messages, Sampling(max_new_tokens=64))
        helped = with_draft.stream(messages, Sampling(max_new_tokens=64))
        parted = same_until_near_tie(phi3_models.hf, messages, alone.text(), helped.text())
        stats = helped.stats
        assert stats.tokens_per_step > 1 and (parted or stats.generated_tokens == alone.stats.generated_tokens)
        print(type(with_draft).__name__, f"{stats.tokens_per_step:.2f} tokens per step, acceptance "
              f"{stats.draft_acceptance}, {stats.tokens_per_s:.1f} vs {alone.stats.tokens_per_s:.1f} tokens/s")
        assert helped.notices and helped.notices[-1].startswith("speculative decoding (draft: INT4 test model): ")
        key = messages[0]["content"]
        if with_draft.max_parallel == 1:  # LLMPipeline reports the draft's acceptance (SDPerModelsPerfMetrics)
            assert 0 < stats.draft_acceptance <= 1 and f"{stats.draft_acceptance:.0%} of the draft's" in \
                helped.notices[-1]
            if not parted:
                _exact[key] = stats.draft_acceptance
        else:  # the step API's handles do not: a lower bound from tokens and steps, never above the real figure
            assert stats.draft_acceptance is None and ", at least " in helped.notices[-1]
            bound = with_draft.assist.accepted_at_least(stats.generated_tokens,
                                                        round(stats.generated_tokens / stats.tokens_per_step))
            print(f"at least {bound:.3f}, LLMPipeline's figure {_exact.get(key)}")
            assert 0 < bound <= 1
            if key in _exact and not parted:  # the same greedy answer, the same draft and num_assistant_tokens
                assert bound <= _exact[key] + 1e-6


def test_a_draft_keeps_stop_cancel_and_concurrent_answers_and_refuses_json(target_alone, with_draft, phi3_models):
    full = target_alone.stream(QUESTIONS[1], Sampling(max_new_tokens=32)).text()
    assert "Paris" in full
    cut = with_draft.stream(QUESTIONS[1], Sampling(max_new_tokens=32, stop=("Paris",))).text()
    assert "Paris" not in cut
    same_until_near_tie(phi3_models.hf, QUESTIONS[1], full, cut, prefix=True)
    long = with_draft.stream(QUESTIONS[0], Sampling(max_new_tokens=400))
    for i, _ in enumerate(long):
        if i == 3:
            long.cancel()
    assert long.stats.finish_reason == "cancelled" and long.stats.generated_tokens < 100
    # the test model's tokenizer has more entries than its output: a draft and a JSON schema would corrupt the heap
    # (OpenVINO GenAI 2026.4.1): refused, before the engine
    assert not with_draft.structured_output and "49157 tokens" in with_draft.structured_output_note
    with pytest.raises(ResponseFormatError, match="while the draft model runs: .* --no-draft"):
        with_draft.stream(QUESTIONS[1], Sampling(max_new_tokens=8, response_format=JsonSchema.any_object())).text()
    answers: dict[str, str] = {}

    def ask(country):
        answers[country] = with_draft.stream([{"role": "user", "content": f"What is the capital of {country}?"}],
                                             Sampling(max_new_tokens=32)).text()

    threads = [threading.Thread(target=ask, args=(c,)) for c in ("France", "Germany")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert "Paris" in answers["France"] and "Berlin" in answers["Germany"], answers


# -- JSON answers and a draft ---------------------------------------------------------------------------------------

def test_whether_json_answers_can_meet_a_draft_is_read_from_the_models(phi3_models, padded):
    fp16, int4 = phi3_models.exports["openvino-fp16"], phi3_models.exports["openvino-int4"]
    assert (vocabulary_size(fp16), logits_width(fp16)) == (49157, 49152)
    assert "49157 tokens" in json_problem(fp16, int4) and "corrupt memory" in json_problem(fp16, int4)
    assert json_problem(padded["openvino-fp16"], padded["openvino-int4"]) == ""
    assert "49152 logits" in json_problem(padded["openvino-fp16"], int4)  # the draft's output counts too
    assert "cannot be read" in json_problem(Path("/nonexistent"))


@pytest.mark.parametrize("parallel", list(ADAPTERS.values()), ids=list(ADAPTERS))
def test_an_automatic_draft_gives_way_to_json_answers(phi3_models, app_home, parallel):
    eng = load(spec(phi3_models.exports["openvino-fp16"], parallel, app_home / "compiled" / f"sd-{parallel}",
                    draft_path=str(phi3_models.exports["openvino-int4"]), draft_label="INT4 test model",
                    draft_optional=True))
    try:
        assert eng.assist is None and eng.structured_output
        assert len(eng.notices) == 1 and eng.notices[0].startswith(
            "speculative decoding (draft: INT4 test model) is not used: OpenVINO GenAI 2026.4 sizes the JSON grammar")
        assert "`--draft always`" in eng.notices[0]
        assert valid_city(eng.stream(ask_city("Paris"), Sampling(max_new_tokens=64,
                                                                 response_format=JsonSchema.of(CITY))).text())
    finally:
        eng.close()


@pytest.fixture(scope="module")
def padded(phi3_models):
    from tests.support.padded_vocab import build

    return build(phi3_models.exports)


@pytest.fixture(scope="module")
def padded_alone(padded, app_home):
    eng = load(spec(padded["openvino-fp16"], 1, app_home / "compiled" / "pad-plain"))
    yield eng
    eng.close()


@pytest.fixture(scope="module", params=list(ADAPTERS))
def padded_with_draft(request, padded, app_home):
    parallel = ADAPTERS[request.param]
    eng = load(spec(padded["openvino-fp16"], parallel, app_home / "compiled" / f"pad-sd-{parallel}",
                    draft_path=str(padded["openvino-int4"]), draft_label="INT4 padded", draft_optional=True))
    assert eng.assist is not None and eng.assist.kind == "draft" and not eng.notices, eng.notices
    assert eng.structured_output and not eng.structured_output_note
    yield eng
    eng.close()


def test_the_padded_copy_answers_as_the_test_model(target_alone, padded_alone, phi3_models):
    for messages in QUESTIONS[1:]:  # another IR (a wider output): the same until a near-tie
        same_until_near_tie(phi3_models.hf, messages, target_alone.stream(messages, Sampling(max_new_tokens=48)).text(),
                            padded_alone.stream(messages, Sampling(max_new_tokens=48)).text())


def test_json_answers_with_the_draft_parse_and_are_the_models_own(padded_alone, padded_with_draft, phi3_models):
    schema = JsonSchema.of(CITY, "city")
    for place in PLACES:
        alone = padded_alone.stream(ask_city(place), Sampling(max_new_tokens=64, response_format=schema))
        helped = padded_with_draft.stream(ask_city(place), Sampling(max_new_tokens=64, response_format=schema))
        text = helped.text()
        assert valid_city(text), text
        same_until_near_tie(phi3_models.hf, ask_city(place), alone.text(), text)  # the grammar holds the same
        assert helped.stats.tokens_per_step > 1 and "speculative decoding (draft: INT4 padded)" in helped.notices[-1]
    objects = padded_with_draft.stream(ask_city("Rome"), Sampling(max_new_tokens=64,
                                                                   response_format=JsonSchema.any_object()))
    assert isinstance(json.loads(objects.text()), dict)
    assert "Paris" in padded_with_draft.stream(QUESTIONS[1], Sampling(max_new_tokens=32)).text()


def test_json_and_text_answers_at_once_with_the_draft(padded_alone, padded_with_draft, phi3_models):
    schema = JsonSchema.of(CITY)
    asks = [(ask_city(p), Sampling(max_new_tokens=64, response_format=schema)) for p in PLACES[:2]] + \
        [(QUESTIONS[0], Sampling(max_new_tokens=48)), (QUESTIONS[1], Sampling(max_new_tokens=32))]
    replies: list = [None] * len(asks)
    start = threading.Barrier(len(asks))

    def run(i):
        start.wait()
        replies[i] = padded_with_draft.stream(*asks[i])
        replies[i].text()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(asks))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert all(valid_city(r.text()) for r in replies[:2]), [r.text() for r in replies[:2]]
    for (messages, sampling), reply in zip(asks, replies, strict=True):
        same_until_near_tie(phi3_models.hf, messages, padded_alone.stream(messages, sampling).text(), reply.text())


HEAP_CHECKED = """
import json, sys
from models.engines import EngineSpec, JsonSchema, Sampling, load
from tests.support.json_answers import CITY, PLACES, ask, valid_city
target, draft, parallel, cache = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
eng = load(EngineSpec(path=target, engine="openvino-genai", device="CPU", label="t", context_length=2048,
                      cache_dir=cache, parallel=parallel, options={"draft_path": draft, "draft_optional": True}))
assert eng.assist is not None and eng.structured_output, eng.notices
texts = [eng.stream(ask(p), Sampling(max_new_tokens=64, response_format=JsonSchema.of(CITY))).text()
         for p in PLACES * 3]
eng.close()
del eng
print(json.dumps({"valid": sum(map(valid_city, texts)), "of": len(texts)}))
"""


@pytest.mark.parametrize("parallel", list(ADAPTERS.values()), ids=list(ADAPTERS))
def test_json_answers_with_the_draft_pass_glibcs_heap_checks(padded, app_home, parallel):
    # MALLOC_CHECK_=3: glibc checks every free and aborts on a damaged heap (what the test model as built does with a
    # draft and a schema at its first JSON answer); the engine is closed and freed before the child exits
    cache = app_home / "compiled" / f"heap-{parallel}"
    done = subprocess.run([sys.executable, "-c", HEAP_CHECKED, str(padded["openvino-fp16"]),
                           str(padded["openvino-int4"]), str(parallel), str(cache)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env=dict(os.environ, MALLOC_CHECK_="3", PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"valid": 12, "of": 12}


UPSTREAM = """
import sys, openvino_genai as g
target, draft = sys.argv[1], sys.argv[2]
cfg = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
pipe = g.LLMPipeline(target, "CPU", **cfg, draft_model=g.draft_model(draft, "CPU", **cfg))
c = pipe.get_generation_config()
c.max_new_tokens, c.num_assistant_tokens = 32, 5
c.structured_output_config = g.StructuredOutputConfig(json_schema='{"type": "object"}')
pipe.generate(g.ChatHistory([{"role": "user", "content": "Answer with a JSON object for Paris."}]), c)
del pipe
print("survived")
"""


def test_the_reason_a_draft_gives_way_still_holds_upstream(phi3_models):
    # OpenVINO GenAI itself, the test model as built (49157 tokens, 49152 logits), a draft and a schema, under glibc's
    # heap checks: it aborts. When an OpenVINO GenAI version stops doing so, json_problem may be relaxed for it.
    done = subprocess.run([sys.executable, "-c", UPSTREAM, str(phi3_models.exports["openvino-fp16"]),
                           str(phi3_models.exports["openvino-int4"])], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, MALLOC_CHECK_="3"))
    print(ov_genai.__version__, done.returncode, done.stderr[-300:])
    assert done.returncode != 0 and "survived" not in done.stdout
