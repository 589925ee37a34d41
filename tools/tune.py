"""The tuning sweep behind the engines' settings (a script, not a test): where the first token's time goes,
and what each OpenVINO property and ONNX Runtime session option does to first token, decode speed, load
time and the answer itself, measured interleaved in one process.

    .venv/bin/python -m tools.tune [--rounds 12] [--tokens 64] [--part first-token properties onnx]

Figures are the minimum and the median over the rounds: on a shared machine the minimum is what the work
costs, the median what a user sees. Each variant's answer to a fixed question is compared with the app's
current settings (greedy: a different text means the setting changes the numbers the model computes).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import paths, peer  # noqa: E402
from bench.stats import Sample, median  # noqa: E402
from models.catalog import embedded_default, load_catalog  # noqa: E402
from models.engines import EngineSpec, Sampling, load  # noqa: E402
from models.engines.openvino_genai import pipeline_config  # noqa: E402
from models.engines.registry import for_format  # noqa: E402
from models.settings import load_settings  # noqa: E402
from models.store import fetch_embedded  # noqa: E402

SHORT = [{"role": "user", "content": "Write a long story about a dragon and a knight."}]
CHECK = [{"role": "user", "content": "What is the capital of France?"}]
Runner = Callable[[list[dict], Sampling], Sample]


def _test_model(name: str) -> Path | None:
    from tools.phi3_test_model import root

    folder = root() / name
    return folder if (folder / ".complete").is_file() else None


def _sweep(variants: dict[str, Runner], rounds: int, tokens: int, reference: str | None = None) -> None:
    """Interleaved rounds; prints first token (short prompt) and decode tokens/s, min and median."""
    answers = {}
    for name, run in variants.items():  # warm-up, and the answer each variant gives
        run(SHORT, Sampling(max_new_tokens=4))
        answers[name] = _answer(run)
        if id(run) in _TEXT and _TEXT[id(run)]:
            _TEXT_KEPT.add(name)
    got: dict[str, list[Sample]] = {name: [] for name in variants}
    for r in range(rounds):
        names = list(variants)
        for name in names[r % len(names):] + names[:r % len(names)]:
            got[name].append(variants[name](SHORT, Sampling(max_new_tokens=tokens)))
    ref = answers.get(reference) if reference else None
    print(f"{'variant':<44} {'first token ms min / p25 / med':>31} {'decode tok/s max / med':>24}  answer")
    for name, samples in got.items():
        ttft = [s.ttft_s * 1000 for s in samples]
        tps = [s.decode_tokens_per_s for s in samples]
        # greedy text can change with any change in the order of float sums (threads, kernels); what matters
        # is that the answer stays right
        same = "" if ref is None or name not in _TEXT_KEPT else (
            (" (same text)" if answers[name] == ref else " (other text)")
            + ("" if "Paris" in answers[name] else " WRONG"))
        p25 = sorted(ttft)[len(ttft) // 4]
        print(f"{name:<44} {min(ttft):>12.1f} / {p25:>6.1f} / {median(ttft):>6.1f} {max(tps):>14.1f} / "
              f"{median(tps):>6.1f}  {answers[name][:48]!r}{same}", flush=True)


_TEXT: dict[int, str] = {}
_TEXT_KEPT: set[str] = set()  # variants whose runner records its text


def _answer(run: Runner) -> str:
    """The greedy answer to CHECK, through a runner that records text (see _texted)."""
    _TEXT.pop(id(run), None)
    run(CHECK, Sampling(max_new_tokens=24))
    return _TEXT.get(id(run), "")


def _llm_pipeline(path: Path, properties: dict) -> Runner:
    import openvino_genai as ov

    from models.engines.openvino_genai import generation_config

    pipe = ov.LLMPipeline(str(path), "CPU", **properties)

    def run(messages, sampling):
        asked = time.perf_counter()
        stamps, parts = [], []

        def streamer(text):
            if text:
                stamps.append(time.perf_counter())
                parts.append(text)
            return ov.StreamingStatus.RUNNING

        result = pipe.generate(ov.ChatHistory(messages), generation_config(pipe.get_generation_config(), sampling),
                               streamer)
        _TEXT[id(run)] = "".join(parts)
        from bench.stats import sample

        return sample(asked, stamps, int(result.perf_metrics.get_num_generated_tokens()))

    return run


def _engine(path: Path, engine: str, device: str, parallel: int, cache: Path) -> Runner:
    eng = load(EngineSpec(path=str(path), engine=engine, device=device, label=path.name, context_length=4096,
                          cache_dir=str(cache), parallel=parallel, options={"gguf_keep_ir": True}))

    def run(messages, sampling):
        asked = time.perf_counter()
        stamps, parts = [], []
        reply = eng.stream(messages, sampling)
        for piece in reply:
            stamps.append(time.perf_counter())
            parts.append(piece)
        _TEXT[id(run)] = "".join(parts)
        from bench.stats import sample

        return sample(asked, stamps, reply.stats.generated_tokens)

    run.engine = eng
    return run


def _llama(gguf: Path) -> Runner | None:
    if peer.version() is None:
        print(f"llama.cpp: skipped, {peer.HOW_TO_INSTALL}")
        return None
    llm = peer.LlamaCpp(gguf, peer.threads(), 4096)

    def run(messages, sampling):
        got = llm.generate(messages, sampling.max_new_tokens)
        _TEXT[id(run)] = ""
        return got

    return run


def first_token(rounds: int, tokens: int, cache: Path) -> None:
    """Where the first token's time goes: the engine alone, each layer of the app on top, and llama.cpp."""
    gguf = fetch_embedded(embedded_default(load_catalog()), load_settings())
    ir = gguf.parent  # the IR the app keeps beside the embedded GGUF (gguf_keep_ir)
    app = pipeline_config("CPU", 4096, None)
    print(f"\n== first token, embedded SmolLM2 ({ir}), app properties {app}")
    variants: dict[str, Runner] = {
        "raw LLMPipeline (IR), app properties": _llm_pipeline(ir, app),
        "seam, LLMPipeline engine (--parallel 1)": _engine(gguf, for_format("gguf").id, "CPU", 1, cache / "p1"),
        "seam, batching engine (app default, 4)": _engine(gguf, for_format("gguf").id, "CPU", 4, cache / "p4"),
    }
    batching = variants["seam, batching engine (app default, 4)"].engine
    raw_cb, _ = paths._raw_continuous_batching(batching)  # noqa: SLF001
    variants["raw ContinuousBatchingPipeline, same config"] = _texted(raw_cb)
    fixed = _engine(gguf, for_format("gguf").id, "CPU", 4, cache / "p4-fixed")
    _serve_callers_between_steps(fixed.engine)
    variants["seam, batching engine, callers served between steps"] = fixed
    llama = _llama(gguf)
    if llama:
        variants["llama.cpp, same GGUF"] = llama
    _sweep(variants, rounds, tokens, reference="raw LLMPipeline (IR), app properties")


def _serve_callers_between_steps(engine, wait_s: float = 0.002) -> None:
    """The change proposed for models/engines/openvino_batching.py, tried here from outside: openvino-genai's
    `ContinuousBatchingPipeline.step()` holds Python's GIL for the whole step, so a caller woken by one step's
    tokens cannot run until the next step has ended: every token reaches its caller a step late (the first
    token too). Before each step, give the callers up to `wait_s` to take what the last step gave them."""
    requests = []

    class Pipe:
        def __init__(self, pipe):
            self._pipe = pipe

        def __getattr__(self, name):
            return getattr(self._pipe, name)

        def step(self):
            deadline = time.perf_counter() + wait_s
            while any(not r.out.empty() for r in requests if not r.ended.is_set()) and time.perf_counter() < deadline:
                time.sleep(0)  # lets a waiting caller take the GIL
            return self._pipe.step()

    submit = engine._submit  # noqa: SLF001

    def track(req):
        requests[:] = [r for r in requests if not r.ended.is_set()] + [req]
        return submit(req)

    engine._pipe = Pipe(engine._pipe)  # noqa: SLF001
    engine._submit = track  # noqa: SLF001


def _texted(run: Runner) -> Runner:
    def wrapped(messages, sampling):
        _TEXT[id(wrapped)] = ""
        return run(messages, sampling)

    return wrapped


PROPERTY_VARIANTS = {
    "app: LATENCY, f32": {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"},
    "LATENCY, bf16": {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "bf16"},
    "no properties (the CPU's default)": {},
    "THROUGHPUT, f32": {"PERFORMANCE_HINT": "THROUGHPUT", "INFERENCE_PRECISION_HINT": "f32"},
    "app + KV cache f16": {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32",
                           "KV_CACHE_PRECISION": "f16"},
    "app + KV cache f32": {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32",
                           "KV_CACHE_PRECISION": "f32"},
    "app + 1 thread": {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1},
    "app + SDPA attention (not paged)": {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32",
                                         "ATTENTION_BACKEND": "SDPA"},
    "app + no dynamic quantization": {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32",
                                      "DYNAMIC_QUANTIZATION_GROUP_SIZE": 0},
}


def properties(rounds: int, tokens: int, models: list[str]) -> None:
    """Each OpenVINO property on each weight format: the GGUF's IR (Q4_1), INT4 IR, FP16 IR."""
    gguf = fetch_embedded(embedded_default(load_catalog()), load_settings())
    formats = {"embedded GGUF Q4_1 (its IR)": gguf.parent,
               "test model INT4 IR": _test_model("openvino-int4"), "test model FP16 IR": _test_model("openvino-fp16")}
    for label, folder in formats.items():
        if folder is None or (models and not any(m in label for m in models)):
            continue
        print(f"\n== OpenVINO properties, {label} ({folder})")
        variants = {}
        for name, props in PROPERTY_VARIANTS.items():
            started = time.perf_counter()
            variants[name] = _llm_pipeline(folder, props)
            print(f"   loaded {name} in {time.perf_counter() - started:.1f} s", flush=True)
        _sweep(variants, rounds, tokens, reference="app: LATENCY, f32")
        variants.clear()


def _ort_variant(src: Path, tmp: Path, name: str, session: dict) -> Path:
    dest = tmp / name.replace(" ", "-").replace(",", "")
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("*.onnx.data", "*.onnx"))
    for f in list(src.glob("*.onnx")) + list(src.glob("*.onnx.data")):
        (dest / f.name).symlink_to(f)  # the weights are shared; only the config differs
    config = json.loads((src / "genai_config.json").read_text())
    config["model"]["decoder"].setdefault("session_options", {}).update(session)
    (dest / "genai_config.json").write_text(json.dumps(config, indent=2))
    return dest


ORT_VARIANTS = {
    "app: the builder's session options": {},
    "intra_op_num_threads 2": {"intra_op_num_threads": 2},
    "intra_op_num_threads 1": {"intra_op_num_threads": 1},
    "no CPU memory arena": {"enable_cpu_mem_arena": False},
    "graph optimization: basic only": {"graph_optimization_level": "ORT_ENABLE_BASIC"},
}


def onnx(rounds: int, tokens: int, cache: Path) -> None:
    src = _test_model("onnx-int4-cpu")
    if src is None:
        print("\n== ONNX Runtime GenAI: the test model is not built (python -m tools.phi3_test_model)")
        return
    current = json.loads((src / "genai_config.json").read_text())["model"]["decoder"].get("session_options", {})
    print(f"\n== ONNX Runtime GenAI session options, test model INT4 ({src}); the builder wrote {current}")
    variants = {}
    for name, session in ORT_VARIANTS.items():
        folder = _ort_variant(src, cache, name, session) if session else src
        variants[name] = _engine(folder, for_format("onnx-genai").id, "cpu", 1, cache)
    _sweep(variants, rounds, tokens, reference="app: the builder's session options")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--part", nargs="+", choices=["first-token", "properties", "onnx"],
                        default=["first-token", "properties", "onnx"])
    parser.add_argument("--formats", nargs="*", default=[], help="properties: only formats whose label has these")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as tmp:
        if "first-token" in args.part:
            first_token(args.rounds, args.tokens, Path(tmp))
        if "properties" in args.part:
            properties(args.rounds, args.tokens, args.formats)
        if "onnx" in args.part:
            onnx(args.rounds, args.tokens, Path(tmp))


if __name__ == "__main__":
    main()
