"""ONNX Runtime GenAI adapter: the og.Generator loop on the CPU, or DirectML on a chosen adapter (Windows).

ONNX Runtime GenAI is pull-based already (`while not generator.is_done()`): no thread, no queue.
A JSON schema (Sampling.response_format) goes to its guidance (GeneratorParams.set_guidance("json_schema", ...),
llguidance inside; 0.18.0 has it on the CPU build); a schema it rejects fails when the generator is made, before
anything runs.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import EngineLoadError
from .base import Engine, EngineSpec, Message, Reply, ReplyStats, StopFilter, engine_words, finish_reason, raw_text
from .context import Budget
from .control_tokens import from_tokenizer_json
from .json_grammar import llguidance_schema
from .sampling import ResponseFormatError, Sampling

# ONNX Runtime GenAI normalises provider names ("dml" -> "DML") when a provider is appended, but
# looks provider options up by the exact name: options set under "dml" land in a second, unused
# entry. Use the canonical name for both.
DML = "DML"


def provider_config(device: str) -> tuple[str | None, dict[str, str]]:
    """(provider, provider options) for a device id. Pure: tested for each form.

    "cpu"/"CPU"     -> no provider appended: ONNX Runtime's CPU execution
    "dml:H:L"       -> DirectML on the adapter with that LUID (DXGI's AdapterLuid, High:Low)
    "dml:N"         -> DirectML on hardware adapter index N (software adapters are not counted)
    Provider option names: onnxruntime-genai src/dml/session_options.cpp ("luid", "device_index").
    """
    kind, _, rest = device.partition(":")
    if kind.lower() == "cpu":
        return None, {}
    if kind.lower() != "dml":
        raise EngineLoadError(f"ONNX Runtime GenAI in this app runs on the CPU or DirectML, not {device!r}")
    if rest.count(":") == 1:
        return DML, {"luid": luid_option(rest)}
    return DML, ({"device_index": rest} if rest else {})


def luid_option(luid: str) -> str:
    """DXGI's AdapterLuid is (LONG HighPart, DWORD LowPart); the probe records it as "High:Low" with both
    parts as read. ONNX Runtime GenAI parses both halves as signed 32-bit numbers: a LowPart of 2**31
    or more is passed as its signed value."""
    high, low = (int(x) for x in luid.split(":"))
    low = low - 2**32 if low >= 2**31 else low
    return f"{high}:{low}"


def genai_config(model_folder: str) -> dict:
    """The model's genai_config.json, or {} when it cannot be read (og.Config then says why in its own words)."""
    try:
        config = json.loads((Path(model_folder) / "genai_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def cpu_threads_overlay(config: dict, cores: int) -> str | None:
    """The session options the CPU gets: one intra-op thread per core, unless the model's genai_config sets its
    own. The model builder writes none, and ONNX Runtime GenAI then ran one thread here: measured on 2 cores (idle,
    test model INT4, `python -m bench.tune --part onnx`): 95 -> 191 tokens/s, first token 113 -> 62 ms, the
    same greedy text. A JSON overlay for `og.Config.overlay`, or None. Pure."""
    try:
        session = config["model"]["decoder"].get("session_options", {})
    except (KeyError, TypeError, AttributeError):
        return None
    if "intra_op_num_threads" in session or cores < 2:
        return None
    return json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": cores}}}})


def _cores() -> int:
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


class OnnxRuntimeGenAIEngine(Engine):
    name = "ONNX Runtime GenAI"
    structured_output = True

    def __init__(self, spec: EngineSpec):
        super().__init__(spec)
        import onnxruntime_genai as og

        self._og = og
        provider, options = provider_config(spec.device)
        try:
            own = genai_config(spec.path)
            config = og.Config(spec.path)
            config.clear_providers()
            threads = cpu_threads_overlay(own, _cores()) if provider is None else None
            if threads:
                config.overlay(threads)
            if provider:
                config.append_provider(provider)
                for key, value in options.items():
                    config.set_provider_option(provider, key, value)
            self._model = og.Model(config)
            self._tokenizer = og.Tokenizer(self._model)
            self._window = _native_window(own)
            self._warm_up()
        except Exception as err:  # noqa: BLE001 - og raises RuntimeError for every load problem
            words = engine_words(err)
            # A provider this build of ONNX Runtime GenAI lacks fails every model the same way.
            missing = provider is not None and ("not been built with" in words or "not available" in words)
            raise EngineLoadError(f"ONNX Runtime GenAI could not load {spec.label} on {spec.device}: {words}",
                                  scope="device" if missing else "artifact") from err

    @property
    def budget(self) -> Budget:
        return Budget(min(self.spec.context_length, self._window or self.spec.context_length))

    def _prompt_ids(self, messages: list[Message]):
        raw = raw_text(messages)  # a raw prompt is continued as it is
        prompt = raw if raw is not None else self._tokenizer.apply_chat_template(json.dumps(messages),
                                                                                 add_generation_prompt=True)
        return self._tokenizer.encode(prompt)

    def control_tokens(self) -> tuple[str, ...]:
        return from_tokenizer_json(Path(self.spec.path))

    def count_tokens(self, messages: list[Message]) -> int:
        return len(self._prompt_ids(messages))

    def _warm_up(self) -> None:
        for _ in self._run(self._prompt_ids([{"role": "user", "content": "Hi"}]), Sampling(max_new_tokens=2), {},
                           threading.Event()):
            pass

    def _params(self, prompt_len: int, sampling: Sampling):
        params = self._og.GeneratorParams(self._model)
        # the budget rule keeps prompt + max_new_tokens within the window, which max_length must respect
        options = {"max_length": prompt_len + sampling.max_new_tokens, "do_sample": not sampling.greedy,
                   "repetition_penalty": sampling.repetition_penalty}
        if not sampling.greedy:
            options.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k or 0,
                           random_seed=sampling.seed)
        params.set_search_options(**options)
        if sampling.response_format is not None:
            params.set_guidance("json_schema", llguidance_schema(sampling.response_format.schema))
        return params

    def _run(self, ids, sampling: Sampling, out: dict, cancel: threading.Event) -> Iterator[str]:
        try:
            generator = self._og.Generator(self._model, self._params(len(ids), sampling))
        except Exception as err:  # noqa: BLE001 - the grammar is built here: a schema it rejects is the asker's
            if sampling.response_format is None:
                raise
            raise ResponseFormatError("ONNX Runtime GenAI cannot hold an answer to this JSON schema: "
                                      f"{engine_words(err)}") from err
        stream = self._tokenizer.create_stream()
        stops = StopFilter(sampling.stop)
        started = time.perf_counter()
        out.update(prompt=len(ids), generated=0, first=None, cancelled=False)
        try:
            generator.append_tokens(ids)
            while not generator.is_done():
                if cancel.is_set():
                    out["cancelled"] = True
                    return
                generator.generate_next_token()
                out["generated"] += 1
                if out["first"] is None:
                    out["first"] = time.perf_counter() - started
                shown = stops.feed(stream.decode(generator.get_next_tokens()[0]))
                if shown:
                    yield shown
                if stops.hit:
                    return
            rest = stops.flush()
            if rest:
                yield rest
        finally:
            out["total"] = time.perf_counter() - started
            del generator

    def _generate(self, messages: list[Message], sampling: Sampling, reply: Reply) -> Iterator[str]:
        out: dict = {}
        yield from self._run(self._prompt_ids(messages), sampling, out, reply._cancel)
        first, total, n = out["first"] or 0.0, out["total"], out["generated"]
        reply.stats = ReplyStats(
            device=self.spec.device, model=self.spec.label, ttft_s=first,
            tokens_per_s=(n - 1) / (total - first) if n > 1 and total > first else 0.0,
            prompt_tokens=out["prompt"], generated_tokens=n,
            finish_reason=finish_reason(out["cancelled"], n, sampling), total_s=total,
        )

    def close(self) -> None:
        self._tokenizer = None
        self._model = None


def _native_window(config: dict) -> int | None:
    """The model's own window (genai_config.json `model.context_length`): max_length may not exceed it."""
    try:
        return int(config["model"]["context_length"])
    except (KeyError, TypeError, ValueError):
        return None
