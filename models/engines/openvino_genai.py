"""OpenVINO GenAI adapter: LLMPipeline on CPU, GPU.N or NPU, for OpenVINO IR folders and GGUF files.

OpenVINO GenAI pushes text into a streamer callback; `base.pushed` turns that into a pull.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import AppError, EngineLoadError
from .assisted import Assistance, assistance, settle_json, structured_output_with
from .base import Engine, EngineSpec, Message, Reply, ReplyStats, engine_words, finish_reason, pushed, raw_text
from .context import Budget
from .control_tokens import from_vocab
from .json_grammar import compact_regex
from .sampling import JsonSchema, ResponseFormatError, Sampling

DEFAULT_MIN_RESPONSE = 512


def pipeline_config(device: str, context_length: int, cache_dir: str | None,
                    min_response_len: int = DEFAULT_MIN_RESPONSE) -> dict:
    """The properties LLMPipeline gets for a device. Pure: tested for every device kind."""
    config: dict = {}
    if cache_dir:
        config["CACHE_DIR"] = cache_dir  # compiled blobs: the second start skips compilation
    kind = device.split(".", maxsplit=1)[0].upper()
    if kind == "NPU":
        # Static shapes: the prompt and the answer budget are fixed at compile time
        # (NPU guide: defaults 1024 + 128). Size them from the model's window.
        min_response = max(128, min(min_response_len, context_length // 4))
        config["MAX_PROMPT_LEN"] = context_length - min_response
        config["MIN_RESPONSE_LEN"] = min_response
        config["GENERATE_HINT"] = "BEST_PERF"  # slower first compile, cached by CACHE_DIR
        return config
    config["PERFORMANCE_HINT"] = "LATENCY"
    if kind == "CPU":
        # Correct before fast: on CPUs with BF16 (AVX512-BF16, AMX) OpenVINO computes in bf16 by
        # default, and the fp16 IR of the test model then answers nonsense; f32 matches PyTorch
        # token for token (shared/reference/conversion-and-runtime-notes.md). GPUs and NPUs keep
        # their f16 default.
        config["INFERENCE_PRECISION_HINT"] = "f32"
    return config


def chat_prompt(ov, tokenizer, messages: list[Message]) -> str:
    """The prompt as the model reads it: the model's own chat template over these messages."""
    return tokenizer.apply_chat_template(ov.ChatHistory(messages), add_generation_prompt=True)


def prompt_ids(ov, tokenizer, messages: list[Message]):
    """The prompt's token ids: the chat template's text (which carries the BOS), or a raw prompt with the BOS."""
    raw = raw_text(messages)
    if raw is not None:
        return tokenizer.encode(raw, add_special_tokens=True).input_ids
    return tokenizer.encode(chat_prompt(ov, tokenizer, messages), add_special_tokens=False).input_ids


def control_tokens_of(tokenizer) -> tuple[str, ...]:
    """The model's control tokens: markup-shaped vocabulary entries its tokenizer drops as special when decoding."""
    return from_vocab(tokenizer.get_vocab(), lambda i: tokenizer.decode([i], skip_special_tokens=True) == "")


def generation_config(config, sampling: Sampling, assist: Assistance | None = None):
    """The model's own generation config (its eos / stop ids) with this request's sampling (and the engine's
    assisted decoding), for both OpenVINO GenAI adapters. The seam gives every sampled request a seed: rng_seed
    defaults to 0 and would repeat the same answer."""
    config.max_new_tokens = sampling.max_new_tokens
    config.do_sample = not sampling.greedy
    if not sampling.greedy:
        config.temperature = sampling.temperature
        config.top_p = sampling.top_p
        config.top_k = sampling.top_k or 0
        config.rng_seed = sampling.seed
    config.repetition_penalty = sampling.repetition_penalty
    if sampling.logprobs:
        config.logprobs = 1  # the chosen token's (OpenVINO GenAI computes one per position)
    config.frequency_penalty = sampling.frequency_penalty
    config.presence_penalty = sampling.presence_penalty
    if sampling.stop:
        config.stop_strings = set(sampling.stop)  # ends the generation in the engine
        config.include_stop_str_in_output = False
    if sampling.response_format is not None:  # xgrammar masks every token that would break the schema
        import openvino_genai

        schema = sampling.response_format.schema
        regex = compact_regex(schema)  # JSON with at most one space between tokens (models/engines/json_grammar.py)
        config.structured_output_config = (openvino_genai.StructuredOutputConfig(regex=regex) if regex
                                           else openvino_genai.StructuredOutputConfig(json_schema=schema))
    return assist.apply(config) if assist is not None else config


def model_defaults(config) -> Sampling:
    """The sampling the model ships with (its generation_config.json, as OpenVINO GenAI read it): sampled with
    its temperature and top-p when it asks for sampling, else greedy. The answer length stays the app's: a
    model's max_new_tokens is usually unset (a huge number) or its whole window."""
    base = Sampling()
    if not getattr(config, "do_sample", False):
        return base
    try:
        return Sampling(temperature=min(2.0, float(config.temperature)), top_p=float(config.top_p) or 1.0,
                        top_k=max(0, int(config.top_k)) if int(config.top_k) < 1_000_000 else 0,
                        max_new_tokens=base.max_new_tokens)
    except (AppError, TypeError, ValueError, OverflowError):
        return base  # a generation config out of the app's bounds: the app's own


PROBE = [{"role": "user", "content": "Hi"}]


def schema_rejected(schema: JsonSchema, generate_one) -> ResponseFormatError | None:
    """Does the engine's grammar compiler take this schema? `generate_one(sampling)` answers PROBE with one
    token under it; OpenVINO GenAI compiles a schema only when a request with it is first sampled, so this
    is the one way to ask. The error it raises is the schema's; None when the schema compiles."""
    try:
        generate_one(Sampling(max_new_tokens=1, response_format=schema))
    except Exception as err:  # noqa: BLE001 - xgrammar's words, as the reason for a 400
        return ResponseFormatError(f"OpenVINO GenAI cannot hold an answer to this JSON schema: {engine_words(err)}")
    return None


def device_missing(device: str, available: list[str]) -> bool:
    """Is the device (or its driver) missing, so that every artifact on it would fail the same way?"""
    base = device.split(".", maxsplit=1)[0].upper()
    return device not in available and not (device == base and any(a.split(".")[0] == base for a in available))


def _available_devices() -> list[str]:
    try:
        import openvino

        return list(openvino.Core().available_devices)
    except Exception:  # noqa: BLE001 - cannot tell: treat the failure as the artifact's
        return []


class OpenVinoGenAIEngine(Engine):
    name = "OpenVINO GenAI"
    structured_output = True
    penalties = True

    def __init__(self, spec: EngineSpec):
        super().__init__(spec)
        import openvino_genai as ov_genai

        self._ov = ov_genai
        self._config = pipeline_config(spec.device, spec.context_length, spec.cache_dir,
                                       spec.options.get("min_response_len", DEFAULT_MIN_RESPONSE))
        self.assist, note = assistance(spec)
        if note:
            self.notices.append(note)
        self.assist, json_note = settle_json(self.assist, Path(spec.path))  # a draft and JSON answers: assisted.py
        if json_note and self.assist is None:  # the draft gave way
            self.notices.append(json_note)
        self.structured_output, self.structured_output_note = structured_output_with(self.assist)
        try:
            self._pipe = self._open_assisted(Path(spec.path))
            self._tokenizer = self._pipe.get_tokenizer()
            if json_note and self.assist is not None:  # the forced draft runs: JSON answers are refused
                self.notices.append(json_note)
        except Exception as err:  # noqa: BLE001 - compile, driver and file errors all arrive as RuntimeError
            self._pipe = None
            missing = spec.device.upper() != "CPU" and device_missing(spec.device, _available_devices())
            raise EngineLoadError(
                f"OpenVINO GenAI could not load {spec.label} on {spec.device}: {engine_words(err)}"
                + (f" ({spec.device} is not among OpenVINO's devices here: its driver is missing)" if missing else ""),
                scope="device" if missing else "artifact") from err

    @property
    def budget(self) -> Budget:
        if "MAX_PROMPT_LEN" in self._config:  # NPU: static shapes, the prompt limit is fixed at compile time
            prompt = self._config["MAX_PROMPT_LEN"]
            return Budget(prompt + self._config["MIN_RESPONSE_LEN"], prompt_limit=prompt)
        return Budget(self.spec.context_length)

    def _open_assisted(self, path: Path):
        """Open and warm up; a draft (or prompt lookup) that fails costs only itself: the model loads without it."""
        try:
            pipe = self._pipe = self._open_or_without_cache(path)
            self._warm_up()  # a device that compiles but fails its first inference fails here, at load
            return pipe
        except Exception as err:  # noqa: BLE001 - retried once without the assistance, else raised as the load error
            if self.assist is None:
                raise
            self.notices.append(f"{self.assist.what} could not be used ({engine_words(err, 200)}): the model "
                                "answers without it.")
            self.assist, self._pipe = None, None
            self.structured_output, self.structured_output_note = structured_output_with(self.assist)
        pipe = self._pipe = self._open_or_without_cache(path)
        self._warm_up()
        return pipe

    def _extra(self) -> dict:
        return self.assist.properties(self._ov, self.spec.device, self._config) if self.assist else {}

    def _open_or_without_cache(self, path: Path):
        """The compiled-model cache and the GGUF's IR copy only save time: when writing them fails (a full
        disk, a read-only folder), load without them and say so."""
        try:
            return self._open(path, self._config)
        except Exception as err:  # noqa: BLE001 - retried once without anything written to disk
            caching = "CACHE_DIR" in self._config or (path.suffix.lower() == ".gguf"
                                                      and self.spec.options.get("gguf_keep_ir"))
            if not caching:
                raise
            if path.suffix.lower() == ".gguf" and self.assist is None:  # else the draft may be the cause: keep it
                for partial in path.parent.glob("openvino_*"):
                    partial.unlink(missing_ok=True)
            plain = {k: v for k, v in self._config.items() if k != "CACHE_DIR"}
            pipe = self._ov.LLMPipeline(str(path), self.spec.device, **plain, **self._extra())  # a bad model raises
            self.notices.append(f"OpenVINO could not write its compiled-model cache ({engine_words(err, 160)}): "
                                "the model runs without it and loads more slowly. Free some disk space in "
                                f"{self.spec.cache_dir or path.parent} to keep it next time.")
            return pipe

    def _open(self, path: Path, config: dict):
        """LLMPipeline reads IR folders and GGUF files. With `gguf_keep_ir`, the first load of a GGUF
        also writes OpenVINO's IR of it beside the file, and later loads read that IR instead."""
        make = self._ov.LLMPipeline
        config = {**config, **self._extra()}
        if path.suffix.lower() != ".gguf" or not self.spec.options.get("gguf_keep_ir"):
            return make(str(path), self.spec.device, **config)
        if (path.parent / "openvino_model.xml").is_file():
            try:
                return make(str(path.parent), self.spec.device, **config)
            except Exception:  # noqa: BLE001 - a damaged IR copy: rebuild it from the GGUF below
                if self.assist is not None:
                    raise  # the draft may be what failed: keep the IR, retry without the draft first
                for stale in path.parent.glob("openvino_*"):
                    stale.unlink()
        return make(str(path), self.spec.device, enable_save_ov_model=True, **config)

    def _warm_up(self) -> None:
        """The first generate() pays ~0.8 s of one-off cost; pay it at load, not on the first user."""
        self._generate_one(Sampling(max_new_tokens=2))

    def _generate_one(self, sampling: Sampling):
        return self._pipe.generate(self._ov.ChatHistory(PROBE), self._generation_config(sampling))

    def control_tokens(self) -> tuple[str, ...]:
        return control_tokens_of(self._tokenizer)

    def count_tokens(self, messages: list[Message]) -> int:
        return int(prompt_ids(self._ov, self._tokenizer, messages).shape[1])

    def _generation_config(self, sampling: Sampling):
        return generation_config(self._pipe.get_generation_config(), sampling, self.assist)

    @property
    def defaults(self) -> Sampling:
        return model_defaults(self._pipe.get_generation_config())

    def _generate(self, messages: list[Message], sampling: Sampling, reply: Reply) -> Iterator[str]:
        started = time.perf_counter()
        raw, config = raw_text(messages), self._generation_config(sampling)
        history = self._ov.ChatHistory(messages) if raw is None else [raw]  # a list: DecodedResults, with metrics
        if raw is not None:
            config.apply_chat_template = False  # a raw prompt is continued as it is
        running, stop = self._ov.StreamingStatus.RUNNING, self._ov.StreamingStatus.STOP

        shown: list[bool] = []

        def run(emit):
            def streamer(text):
                shown or shown.append(True)
                return stop if emit(text) else running

            return self._pipe.generate(history, config, streamer)

        try:
            result = yield from pushed(run, reply._cancel, "openvino-genai-generate")
        except Exception:
            # A schema xgrammar cannot compile fails the request before its first token (the pipeline
            # itself recovers): tell that apart from an engine failure, for a 400 instead of a 503.
            if sampling.response_format is not None and not shown:
                rejected = schema_rejected(sampling.response_format, self._generate_one)
                if rejected is not None:
                    raise rejected from None
            raise
        reply.stats = self._stats(result, sampling, reply._cancel.is_set(), time.perf_counter() - started)
        note = self.assist.notice(reply.stats) if self.assist else None
        if note:
            reply.notices.append(note)

    def _stats(self, result, sampling: Sampling, cancelled: bool, total: float) -> ReplyStats:
        metrics = result.perf_metrics
        generated = int(metrics.get_num_generated_tokens())
        ttft = metrics.get_ttft().mean / 1000.0
        tpot = metrics.get_tpot().mean / 1000.0
        per_step = acceptance = None
        if self.assist is not None:
            steps = len(metrics.raw_metrics.m_batch_sizes)  # one entry per step that produced tokens
            per_step = generated / steps if steps else None
            extended = result.extended_perf_metrics  # SDPerModelsPerfMetrics with a draft; None for prompt lookup
            if extended is not None and hasattr(extended, "get_draft_acceptance_rate") \
                    and extended.get_num_draft_tokens():
                acceptance = float(extended.get_draft_acceptance_rate())
        return ReplyStats(
            device=self.spec.device,
            model=self.spec.label,
            ttft_s=ttft,
            tokens_per_s=(1.0 / tpot) if tpot > 0 else 0.0,
            prompt_tokens=int(metrics.get_num_input_tokens()),
            generated_tokens=generated,
            finish_reason=finish_reason(cancelled, generated, sampling),
            total_s=total,
            tokens_per_step=per_step,
            draft_acceptance=acceptance,
        )

    def close(self) -> None:
        self._pipe = None

