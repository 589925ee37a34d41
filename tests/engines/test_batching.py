"""Continuous batching (models/engines/openvino_batching.py) on the real embedded model: several requests at
once, each with its own answer, Stop, stop strings, seed and figures."""

from __future__ import annotations

import threading
import time

import pytest

from models.engines import EngineSpec, Sampling, load
from models.engines.kv_cache import cache_gb
from models.engines.openvino_batching import BatchingOpenVinoEngine
from models.engines.openvino_genai import OpenVinoGenAIEngine
from tests.support.near_tie import same_until_near_tie

# All four are answered right by the single engine (greedy, 32 tokens).
FACTS = [("France", "Paris"), ("Germany", "Berlin"), ("Japan", "Tokyo"), ("Italy", "Rome")]


def ask(country: str) -> list[dict]:
    return [{"role": "user", "content": f"What is the capital of {country}?"}]


def spec(embedded_gguf, app_home, parallel: int) -> EngineSpec:
    return EngineSpec(path=str(embedded_gguf), engine="openvino-genai", device="CPU", label="SmolLM2-135M",
                      context_length=4096, cache_dir=str(app_home / "compiled" / f"batching-{parallel}"),
                      parallel=parallel, options={"gguf_keep_ir": True})


@pytest.fixture(scope="module")
def single(embedded_gguf, app_home):
    eng = load(spec(embedded_gguf, app_home, 1))
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def batching(embedded_gguf, app_home, single):  # after `single`: the GGUF's IR is written by then
    eng = load(spec(embedded_gguf, app_home, 4))
    yield eng
    eng.close()


def all_at_once(engine, requests: list[tuple[list[dict], Sampling]]) -> list:
    """Each request from its own thread, started together; the finished replies, in order."""
    replies = [None] * len(requests)
    start = threading.Barrier(len(requests))

    def run(i):
        start.wait()
        reply = engine.stream(*requests[i])
        reply.text()
        replies[i] = reply

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return replies


def test_load_picks_the_batching_engine_only_for_parallel_on_cpu_or_gpu(single, batching):
    assert isinstance(batching, BatchingOpenVinoEngine) and batching.max_parallel == 4
    assert isinstance(single, OpenVinoGenAIEngine) and single.max_parallel == 1
    assert batching.cache_gb >= 1
    assert cache_gb(4096, 4, 96 * 1024) == 2  # 4096 x 4 tokens x 96 KiB = 1.5 GiB, in whole GB


def test_four_requests_at_once_each_get_their_own_answer(single, batching, phi3_models):
    alone = {c: single.stream(ask(c), Sampling(max_new_tokens=32)).text() for c, _ in FACTS}
    for (country, city) in FACTS:
        assert city in alone[country], (country, alone[country])
    replies = all_at_once(batching, [(ask(c), Sampling(max_new_tokens=32)) for c, _ in FACTS])
    for (country, city), reply in zip(FACTS, replies, strict=True):
        text = reply.text()
        assert city in text, (country, text)
        assert not [other for _, other in FACTS if other != city and other in text], text
        assert reply.stats.finish_reason in ("stop", "length") and reply.stats.generated_tokens > 0
        assert reply.stats.prompt_tokens > 5 and 0 < reply.stats.ttft_s < 10 and reply.stats.tokens_per_s > 0
    # Greedy decoding over a batch computes the same logits up to float rounding (the kernels see other batch
    # shapes); where two tokens are near-tied the answers may part (tests/support/near_tie.py), not elsewhere.
    parted = {c: same_until_near_tie(phi3_models.hf, ask(c), alone[c], r.text())
              for (c, _), r in zip(FACTS, replies, strict=True)}
    print("parted from the single engine at a near-tie:", {c: p for c, p in parted.items() if p})


def test_one_request_alone_is_the_single_engines_answer_until_a_near_tie(single, batching, phi3_models):
    for country, _ in FACTS:  # two pipelines, two sets of kernels: the same tokens until a near-tie
        alone = single.stream(ask(country), Sampling(max_new_tokens=32)).text()
        same_until_near_tie(phi3_models.hf, ask(country), alone,
                            batching.stream(ask(country), Sampling(max_new_tokens=32)).text())


def test_stopping_one_leaves_the_others_running(batching):
    long_ask = [{"role": "user", "content": "Write a very long story about a dragon and a knight."}]
    others = []

    def run(country):
        reply = batching.stream(ask(country), Sampling(max_new_tokens=32))
        reply.text()
        others.append(reply)

    stopped = batching.stream(long_ask, Sampling(max_new_tokens=400))
    closed = batching.stream(long_ask, Sampling(max_new_tokens=400))
    it, it2 = iter(stopped), iter(closed)
    next(it), next(it2)
    threads = [threading.Thread(target=run, args=(c,)) for c in ("Germany", "Japan")]
    for t in threads:
        t.start()
    time.sleep(0.2)
    t0 = time.perf_counter()
    stopped.cancel()
    rest = list(it)
    assert time.perf_counter() - t0 < 0.5
    closed.close()  # what Gradio does when a page goes away
    assert time.perf_counter() - t0 < 1.0
    for t in threads:
        t.join(60)
    assert stopped.stats.finish_reason == "cancelled" and stopped.stats.generated_tokens < 200, rest
    assert sorted(r.stats.finish_reason for r in others) == ["stop", "stop"]
    assert any("Berlin" in r.text() for r in others) and any("Tokyo" in r.text() for r in others)


def test_engine_cancel_stops_every_running_generation(batching):
    long_ask = [{"role": "user", "content": "Write a very long story about a dragon and a knight."}]
    replies = [batching.stream(long_ask, Sampling(max_new_tokens=400)) for _ in range(2)]
    its = [iter(r) for r in replies]
    for it in its:
        next(it)
    batching.cancel()
    for it in its:
        list(it)
    assert [r.stats.finish_reason for r in replies] == ["cancelled", "cancelled"]


def test_stop_strings_and_seeds_are_per_request(batching):
    sampled = Sampling(max_new_tokens=24, temperature=0.9, top_p=0.95, top_k=40, seed=7)
    cut, full, seeded, same_seed = all_at_once(batching, [
        (ask("France"), Sampling(max_new_tokens=32, stop=("capital of",))),
        (ask("France"), Sampling(max_new_tokens=32)),
        (ask("Germany"), sampled),
        (ask("Germany"), sampled),
    ])
    assert "capital of" in full.text() and "capital" not in cut.text() and full.text().startswith(cut.text())
    assert seeded.seed == 7 and same_seed.seed == 7 and seeded.text() and same_seed.text()
    alone = [batching.stream(ask("Germany"), sampled).text() for _ in range(2)]
    assert alone[0] == alone[1]  # the seed repeats the answer run after run (the sampler's RNG is per request)
    # In a batch the logits differ by float rounding (other batch shapes), so a sampled answer that reaches
    # a near-tie may part from the one it gives alone: the seed repeats answers, not across batch company.
    other = batching.stream(ask("Germany"), Sampling(max_new_tokens=24, temperature=0.9, top_p=0.95,
                                                     top_k=40, seed=8)).text()
    print("seed 7 alone:", alone[0], "| in a batch:", seeded.text(), "| seed 8:", other)


def test_a_long_chats_next_turn_reuses_its_prefix(batching):
    history = [{"role": "system", "content": "You are a helpful assistant."}]
    for i in range(24):
        history += [{"role": "user", "content": f"Tell me a fact about the number {i}, in one sentence please."},
                    {"role": "assistant", "content": f"The number {i} comes right after {i - 1} and before "
                                                     f"{i + 1}; it is {'even' if i % 2 == 0 else 'odd'}."}]
    first = batching.stream(history + ask("France"), Sampling(max_new_tokens=8))
    first.text()
    second = batching.stream(history + ask("France") + [{"role": "assistant", "content": first.text()}]
                             + ask("Italy"), Sampling(max_new_tokens=8))
    second.text()
    print(f"prompt {first.stats.prompt_tokens} tokens: first turn {first.stats.ttft_s:.3f} s to first token, "
          f"next turn ({second.stats.prompt_tokens} tokens) {second.stats.ttft_s:.3f} s")
    assert first.stats.prompt_tokens > 900 and second.stats.generated_tokens > 0


def test_before_a_step_the_scheduler_waits_for_callers_to_take_their_tokens_but_not_forever():
    import queue
    from types import SimpleNamespace

    from models.engines.openvino_batching import let_callers_read

    caller = SimpleNamespace(out=queue.Queue(), waiting=False, taken=0)
    caller.out.put([42])

    def take() -> None:  # a caller that takes its tokens a moment later, then waits for the next ones
        time.sleep(0.01)
        caller.taken = 1  # counted first here, so the scheduler never sees it between the two
        caller.out.get()
        time.sleep(0.01)  # shows its first text
        caller.waiting = True

    threading.Thread(target=take).start()
    assert let_callers_read([caller], limit_s=5.0)  # returned once the caller was back waiting
    assert caller.out.empty() and caller.waiting
    busy = SimpleNamespace(out=queue.Queue(), waiting=False, taken=5)  # later tokens: taking them is enough
    assert let_callers_read([busy], limit_s=5.0)
    gone = SimpleNamespace(out=queue.Queue(), waiting=False, taken=0)  # a caller that never comes back
    gone.out.put([7])
    began = time.perf_counter()
    assert not let_callers_read([caller, gone], limit_s=0.05)
    assert time.perf_counter() - began < 1.0  # the step goes ahead without it
