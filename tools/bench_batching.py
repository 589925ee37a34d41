"""Continuous batching benchmark (a script, not a test): aggregate and per-user tokens/s and time to first token
for 1, 2, 4, 8 requests at once, on the embedded model and, when it is built, the Phi-3-architecture test model
(its OpenVINO INT4 IR), each with its ratio to one request in the same run.

Two ways in, each measured on its own: `engine` calls the engine seam from N threads; `api` starts the real app
(`launch.py --offline --model PATH --parallel N`, loopback) and runs N streaming clients of /v1/chat/completions
at once, timing the first content chunk and counting the tokens the server's usage chunk reports.

    .venv/bin/python -m tools.bench_batching [--tokens 128] [--parallel 1 2 4 8] [--through engine api]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

from models.catalog import embedded_default, load_catalog  # noqa: E402
from models.engines import EngineSpec, Sampling, load  # noqa: E402
from models.engines.registry import for_format  # noqa: E402
from models.settings import load_settings  # noqa: E402
from models.store import fetch_embedded  # noqa: E402
from tools.phi3_test_model import root as test_model_root  # noqa: E402

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


def run_api(url: str, users: int, tokens: int) -> dict:
    """N streaming API clients at once: TTFT is the first content chunk, tokens are the server's usage count."""
    import httpx

    results: list = [None] * users
    start = threading.Barrier(users + 1)

    def one(i: int) -> None:
        body = {"messages": [{"role": "user", "content": f"Write a long story about {TOPICS[i % len(TOPICS)]}."}],
                "max_tokens": tokens, "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
        client = httpx.Client(timeout=600)  # before the start: making one takes ~30 ms (its SSL context)
        start.wait()
        began = time.perf_counter()
        first = last = None
        used = 0
        with client, client.stream("POST", url + "/v1/chat/completions", json=body) as answer:
            answer.raise_for_status()
            for line in answer.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                used = (chunk.get("usage") or {}).get("completion_tokens", used)
                if any(c["delta"].get("content") for c in chunk.get("choices", [])):
                    last = time.perf_counter()
                    first = first or last
        results[i] = (began, first, last, used)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(users)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    per_user = [(n - 1) / (last - first) for _, first, last, n in results if n > 1 and last > first]
    return {"aggregate": sum(r[3] for r in results) / wall, "per_user": sum(per_user) / users,
            "ttft": sum(first - b for b, first, _, _ in results) / users, "tokens": sum(r[3] for r in results)}


def _table(title: str, parallel: list[int], measure) -> None:
    print(f"\n{title}")
    print(f"{'at once':>8} {'aggregate tok/s':>16} {'x one':>6} {'per user tok/s':>15} {'x one':>6} "
          f"{'TTFT s':>7} {'tokens':>7}")
    base = None
    for users in parallel:
        r = measure(users)
        base = base or r
        print(f"{users:>8} {r['aggregate']:>16.1f} {r['aggregate'] / base['aggregate']:>6.2f} "
              f"{r['per_user']:>15.1f} {r['per_user'] / base['per_user']:>6.2f} {r['ttft']:>7.3f} "
              f"{r['tokens']:>7}", flush=True)


def bench(label: str, path: Path, parallel: list[int], tokens: int, cache: Path) -> None:
    engine = load(EngineSpec(path=str(path), engine=for_format("gguf").id, device="CPU", label=label,
                             context_length=4096, cache_dir=str(cache / label),
                             parallel=max(parallel), options={"gguf_keep_ir": True}))
    try:
        _table(f"{label} ({path.name}), engine seam, CPU, {engine.max_parallel} slots, KV pool {engine.cache_gb} GB, "
               f"{tokens} new tokens each (greedy)", parallel, lambda users: run(engine, users, tokens))
    finally:
        engine.close()


def bench_api(label: str, path: Path, parallel: list[int], tokens: int, home: Path) -> None:
    from tools.live_app import start_app

    app = start_app("--offline", "--model", str(path), "--parallel", str(max(parallel)),
                    "--max-new-tokens", str(tokens), home=home)
    try:
        loaded = next((line.split("load", 1)[1].strip() for line in app.lines if "] load" in line), "?")
        _table(f"{label} ({path.name}), through the API ({app.url}/v1, streaming), {loaded}, {tokens} new tokens "
               "each (greedy)", parallel, lambda users: run_api(app.url, users, tokens))
    finally:
        app.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--through", choices=["engine", "api"], nargs="+", default=["engine", "api"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-batching-") as tmp:
        models = [("SmolLM2-135M (embedded GGUF)", fetch_embedded(embedded_default(load_catalog()), load_settings()))]
        int4 = test_model_root() / "openvino-int4"
        if (int4 / ".complete").is_file():
            models.append(("Phi-3 test model INT4", int4))
        else:
            print(f"\nPhi-3 test model not built ({int4}): skipped (python -m tools.phi3_test_model builds it)")
        for label, path in models:
            if "engine" in args.through:
                bench(label, path, args.parallel, args.tokens, Path(tmp))
            if "api" in args.through:
                bench_api(label, path, args.parallel, args.tokens, Path(tmp) / "app-home")


if __name__ == "__main__":
    main()
