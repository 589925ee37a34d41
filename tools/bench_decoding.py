"""Assisted decoding benchmark (a script, not a test): decode tokens/s with and without a draft model (speculative
decoding: the Phi-3-architecture test model's FP16 IR as target, its INT4 IR as draft) and with and without prompt
lookup on rewrite prompts (the same FP16 target, and the embedded SmolLM2), side by side in one run, through the engine
seam on the CPU, for the single-request adapter (LLMPipeline) and the batching one (ContinuousBatchingPipeline, the CPU
default; one request at a time here).

Plain and assisted engines are loaded together and asked in turns, prompt by prompt, so that machine noise hits both
alike. Decode tokens/s is (tokens - 1) / (time after the first token), summed over the prompts; "same" says whether
every greedy answer was identical with and without. The draft here is as big as the target (the test model has no
small sibling), so speculative decoding cannot win on it: the row shows its overhead and its acceptance; a real pair
(Phi-3-mini + FastDraft-50M) differs. Prompt lookup pays when the answer copies the prompt.

    .venv/bin/python -m tools.bench_decoding [--tokens 128] [--rounds 2] [--adapters single batching]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from models.catalog import embedded_default, load_catalog  # noqa: E402
from models.engines import EngineSpec, Sampling, load  # noqa: E402
from models.engines.registry import for_format  # noqa: E402
from models.settings import load_settings  # noqa: E402
from models.store import fetch_embedded  # noqa: E402
from tools.phi3_test_model import root as test_model_root  # noqa: E402

STORIES = [[{"role": "user", "content": f"Write a long story about {topic}."}]
           for topic in ("a dragon and a knight", "a lighthouse keeper", "a robot learning to cook")]
TEXT = ("The old lighthouse stood on the rocks at the end of the bay. Every evening the keeper climbed the one hundred "
        "and twelve steps to light the lamp, and every morning he climbed them again to put it out. Ships passed in "
        "the night and never knew his name. One winter a storm broke the window at the top of the tower, and the "
        "keeper held a lantern in the wind until dawn so that the fishing boats could find the harbour. In the "
        "spring the town gave him a new window and a small brass plate with his name on it.")
REWRITES = [[{"role": "user", "content": ask + "\n\n" + TEXT}] for ask in (
    "Repeat this text exactly, word for word:",
    "Rewrite this text in the past perfect where it fits, changing as little as possible:",
    "Rewrite this text, replacing 'keeper' with 'guardian' everywhere:")]
ADAPTERS = {"single": 1, "batching": 4}


def engine(path: Path, parallel: int, cache: Path, label: str, **options):
    return load(EngineSpec(path=str(path), engine=for_format("gguf").id, device="CPU", label=label, context_length=4096,
                           cache_dir=str(cache / label.replace(" ", "-")),
                           parallel=parallel, options={"gguf_keep_ir": True, **options}))


def _decode(reply) -> tuple[int, float]:
    s = reply.stats
    return max(0, s.generated_tokens - 1), max(1e-9, s.total_s - s.ttft_s)


def compare(plain, helped, prompts: list, tokens: int, rounds: int) -> dict:
    tally = {"plain": [0, 0.0], "helped": [0, 0.0], "same": True, "steps": [], "accepted": [], "ttft": [[], []]}
    for _ in range(rounds):
        for messages in prompts:
            a = plain.stream(messages, Sampling(max_new_tokens=tokens))
            b = helped.stream(messages, Sampling(max_new_tokens=tokens))
            tally["same"] &= a.text() == b.text()
            for key, reply in (("plain", a), ("helped", b)):
                n, t = _decode(reply)
                tally[key][0] += n
                tally[key][1] += t
            tally["ttft"][0].append(a.stats.ttft_s)
            tally["ttft"][1].append(b.stats.ttft_s)
            if b.stats.tokens_per_step:
                tally["steps"].append(b.stats.tokens_per_step)
            if b.stats.draft_acceptance is not None:
                tally["accepted"].append(b.stats.draft_acceptance)
    return tally


def row(model: str, adapter: str, how: str, t: dict) -> None:
    plain, helped = t["plain"][0] / t["plain"][1], t["helped"][0] / t["helped"][1]
    steps = f"{sum(t['steps']) / len(t['steps']):.2f}" if t["steps"] else "-"
    accepted = f"{sum(t['accepted']) / len(t['accepted']):.0%}" if t["accepted"] else "n/a"
    ttft = [sum(x) / len(x) for x in t["ttft"]]
    print(f"{model:<22} {adapter:<9} {how:<22} {plain:>8.1f} {helped:>9.1f} {helped / plain:>6.2f} {steps:>6} "
          f"{accepted:>9} {ttft[0]:>6.3f} {ttft[1]:>6.3f} {'yes' if t['same'] else 'NO':>5}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--adapters", choices=list(ADAPTERS), nargs="+", default=list(ADAPTERS))
    args = parser.parse_args()
    built = test_model_root()
    fp16, int4 = built / "openvino-fp16", built / "openvino-int4"
    gguf = fetch_embedded(embedded_default(load_catalog()), load_settings())
    cases = []
    if (fp16 / ".complete").is_file() and (int4 / ".complete").is_file():
        cases += [("Phi-3 test model FP16", fp16, "draft: test model INT4",
                   {"draft_path": str(int4), "draft_label": "test model INT4"}, STORIES),
                  ("Phi-3 test model FP16", fp16, "prompt lookup (rewrite)", {"prompt_lookup": True}, REWRITES)]
    else:
        print(f"Phi-3 test model not built ({built}): its rows are skipped (python -m tools.phi3_test_model)")
    cases.append(("SmolLM2-135M (GGUF)", gguf, "prompt lookup (rewrite)", {"prompt_lookup": True}, REWRITES))
    print(f"CPU, greedy, up to {args.tokens} new tokens, {args.rounds} rounds of 3 prompts; num_assistant_tokens 5, "
          "max_ngram_size 3")
    print(f"{'model':<22} {'adapter':<9} {'decoding':<22} {'plain':>8} {'assisted':>9} {'x':>6} {'tok/st':>6} "
          f"{'accepted':>9} {'ttft':>6} {'ttft+':>6} {'same':>5}")
    with tempfile.TemporaryDirectory(prefix="bench-decoding-") as tmp:
        for model, path, how, options, prompts in cases:
            for adapter in args.adapters:
                parallel = ADAPTERS[adapter]
                plain = engine(path, parallel, Path(tmp), f"{model} {adapter}")
                helped = engine(path, parallel, Path(tmp), f"{model} {adapter} {how[:6]}", **options)
                try:
                    if helped.assist is None:
                        print(f"{model} {adapter} {how}: not used: {helped.notices}")
                        continue
                    row(model, adapter, how, compare(plain, helped, prompts, args.tokens, args.rounds))
                finally:
                    helped.close()
                    plain.close()
    print("tokens/s: decode rate after the first token; x: assisted / plain; tok/st: tokens per step of the model "
          "(assisted); accepted: the draft's tokens the target accepted, as OpenVINO GenAI reports it (LLMPipeline "
          "only; n/a: not reported); ttft/ttft+: seconds to the first token plain / assisted")


if __name__ == "__main__":
    main()
