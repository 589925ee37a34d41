"""ONNX Runtime GenAI adapter: the og.Generator loop on the CPU, or DirectML on a chosen adapter (Windows).

ONNX Runtime GenAI is pull-based already (`while not generator.is_done()`): no thread, no queue.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from ..errors import EngineLoadError
from .base import Engine, EngineSpec, Message, Reply, ReplyStats, Sampling


def provider_config(device: str) -> tuple[str | None, dict[str, str]]:
    """(provider, provider options) for a device id. Pure: tested for each form.

    "cpu"/"CPU"     -> no provider appended: ONNX Runtime's CPU execution
    "dml:H:L"       -> DirectML on the adapter with that LUID (DXGI's AdapterLuid, High:Low)
    "dml:N"         -> DirectML on adapter index N
    Provider option names: onnxruntime-genai src/dml/session_options.cpp ("luid", "device_index").
    """
    kind, _, rest = device.partition(":")
    if kind.lower() == "cpu":
        return None, {}
    if kind.lower() != "dml":
        raise EngineLoadError(f"ONNX Runtime GenAI in this app runs on the CPU or DirectML, not {device!r}")
    if rest.count(":") == 1:
        return "dml", {"luid": rest}
    return "dml", ({"device_index": rest} if rest else {})


class OnnxRuntimeGenAIEngine(Engine):
    name = "ONNX Runtime GenAI"

    def __init__(self, spec: EngineSpec):
        super().__init__(spec)
        import onnxruntime_genai as og

        self._og = og
        provider, options = provider_config(spec.device)
        try:
            config = og.Config(spec.path)
            config.clear_providers()
            if provider:
                config.append_provider(provider)
                for key, value in options.items():
                    config.set_provider_option(provider, key, value)
            self._model = og.Model(config)
            self._tokenizer = og.Tokenizer(self._model)
        except Exception as err:  # noqa: BLE001 - og raises RuntimeError for every load problem
            raise EngineLoadError(f"ONNX Runtime GenAI could not load {spec.label} on {spec.device}: {err}") from err
        self._warm_up()

    def _prompt_ids(self, messages: list[Message]):
        prompt = self._tokenizer.apply_chat_template(json.dumps(messages), add_generation_prompt=True)
        return self._tokenizer.encode(prompt)

    def count_tokens(self, messages: list[Message]) -> int:
        return len(self._prompt_ids(messages))

    def _warm_up(self) -> None:
        for _ in self._run(self._prompt_ids([{"role": "user", "content": "Hi"}]), Sampling(max_new_tokens=2), {}):
            pass

    def _params(self, prompt_len: int, sampling: Sampling):
        params = self._og.GeneratorParams(self._model)
        options = {"max_length": prompt_len + sampling.max_new_tokens, "do_sample": not sampling.greedy,
                   "repetition_penalty": sampling.repetition_penalty}
        if not sampling.greedy:
            options.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k or 0)
            if sampling.seed is not None:
                options["random_seed"] = sampling.seed
        params.set_search_options(**options)
        return params

    def _run(self, ids, sampling: Sampling, out: dict) -> Iterator[str]:
        generator = self._og.Generator(self._model, self._params(len(ids), sampling))
        stream = self._tokenizer.create_stream()
        started = time.perf_counter()
        out.update(prompt=len(ids), generated=0, first=None, finish="stop", text="")
        try:
            generator.append_tokens(ids)
            while not generator.is_done():
                if self._cancel.is_set():
                    out["finish"] = "cancelled"
                    return
                generator.generate_next_token()
                out["generated"] += 1
                if out["first"] is None:
                    out["first"] = time.perf_counter() - started
                piece = stream.decode(generator.get_next_tokens()[0])
                if not piece:
                    continue
                out["text"] += piece
                cut = _stop_at(out["text"], sampling.stop)
                if cut is not None:
                    keep = len(piece) - (len(out["text"]) - cut)
                    if keep > 0:
                        yield piece[:keep]
                    return
                yield piece
            if out["generated"] >= sampling.max_new_tokens:
                out["finish"] = "length"
        finally:
            out["total"] = time.perf_counter() - started
            del generator

    def _generate(self, messages: list[Message], sampling: Sampling, reply: Reply) -> Iterator[str]:
        out: dict = {}
        yield from self._run(self._prompt_ids(messages), sampling, out)
        first, total, n = out["first"] or 0.0, out["total"], out["generated"]
        reply.stats = ReplyStats(
            device=self.spec.device, model=self.spec.label, ttft_s=first,
            tokens_per_s=(n - 1) / (total - first) if n > 1 and total > first else 0.0,
            prompt_tokens=out["prompt"], generated_tokens=n, finish_reason=out["finish"], total_s=total,
        )

    def close(self) -> None:
        self._tokenizer = None
        self._model = None


def _stop_at(text: str, stops: tuple[str, ...]) -> int | None:
    hits = [i for s in stops if s and (i := text.find(s)) >= 0]
    return min(hits) if hits else None
