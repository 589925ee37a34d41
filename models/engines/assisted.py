"""Assisted decoding, for both OpenVINO GenAI adapters: a cheap guesser proposes a few tokens, the model checks them
all in one pass and keeps those it would have picked itself, so a greedy answer is the model's own, token for token.

- Speculative decoding: a small draft model with the same tokenizer (`spec.options["draft_path"]`, an OpenVINO IR
  folder; `draft_label` names it). LLMPipeline and ContinuousBatchingPipeline both take it as the `draft_model`
  property (`openvino_genai.draft_model(path, device, **properties)`); the KV-cache pool is split between the two.
- Prompt lookup: n-grams of the prompt itself (`spec.options["prompt_lookup"] = True`): pays off when the answer
  repeats the prompt (a rewrite, an edit, a quote).
Options `num_assistant_tokens` (default 5, upstream's) and `max_ngram_size` (prompt lookup, default 3) apply to every
request: prompt lookup asserts both on each, and ContinuousBatchingPipeline.add_request does not default
num_assistant_tokens for a draft as generate() does. Only on CPU or GPU (the NPU path is not offered here); the two
are exclusive upstream, so a draft wins over prompt lookup.

No JSON answers with a draft: in OpenVINO GenAI 2026.4.1 a request with a StructuredOutputConfig in a pipeline
with a draft model corrupts the heap (glibc: "double free or corruption" when the pipeline is destroyed, "malloc():
corrupted top size" mid-answer; LLMPipeline and ContinuousBatchingPipeline alike; prompt lookup is not affected).
`blocks_structured_output` makes such an engine refuse response_format (a 400) instead.

Figures: tokens per step (each step runs the model once) for both kinds; the draft's acceptance rate only where
OpenVINO GenAI reports it per answer (LLMPipeline's SDPerModelsPerfMetrics; the batching pipeline's handles report
plain PerfMetrics, and prompt lookup reports no extended metrics at all).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .base import EngineSpec, ReplyStats

DEFAULT_ASSISTANT_TOKENS = 5  # ContinuousBatchingPipeline's default_num_assistant_tokens for speculative decoding
DEFAULT_NGRAM = 3  # upstream's prompt-lookup sample
MAX_ASSISTANT_TOKENS = 32
MAX_NGRAM = 16


def _count(options: dict, key: str, default: int, high: int) -> int:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise ValueError(f"engine option {key} must be a whole number from 1 to {high}, got {value!r}")
    return value


@dataclass(frozen=True)
class Assistance:
    kind: str  # "draft" | "prompt-lookup"
    num_assistant_tokens: int = DEFAULT_ASSISTANT_TOKENS
    draft_path: str = ""
    draft_label: str = ""
    max_ngram_size: int = DEFAULT_NGRAM

    @property
    def blocks_structured_output(self) -> str:
        """Why an engine with this assistance must refuse JSON schemas ("" when it need not)."""
        if self.kind != "draft":
            return ""
        return ("while speculative decoding is on: OpenVINO GenAI corrupts memory when a draft model and a JSON "
                "schema meet. Ask without response_format, or start the app without the draft model for JSON answers")

    @property
    def what(self) -> str:
        if self.kind == "draft":
            return f"speculative decoding (draft: {self.draft_label or Path(self.draft_path).name})"
        return "prompt lookup"

    def properties(self, ov, device: str, config: dict) -> dict:
        """The pipeline's extra properties; the draft compiles on the same device with the same properties."""
        if self.kind == "draft":
            return {"draft_model": ov.draft_model(self.draft_path, device, **config)}
        return {"prompt_lookup": True}

    def apply(self, config):
        """Every request's GenerationConfig: how many tokens to propose (and the n-gram size for prompt lookup)."""
        config.num_assistant_tokens = self.num_assistant_tokens
        if self.kind == "prompt-lookup":
            config.max_ngram_size = self.max_ngram_size
        return config

    def notice(self, stats: ReplyStats) -> str | None:
        """The figures' addition: tokens per step, and the draft's acceptance where the engine reports it."""
        if stats.tokens_per_step is None:
            return None
        line = f"{self.what}: {stats.tokens_per_step:.1f} tokens per step"
        if stats.draft_acceptance is not None:
            line += f", {stats.draft_acceptance:.0%} of the draft's tokens accepted"
        return line


def structured_output_with(assist: Assistance | None) -> tuple[bool, str]:
    """(can an OpenVINO GenAI engine with this assistance hold JSON schemas, and the note when it cannot)."""
    why = assist.blocks_structured_output if assist is not None else ""
    return not why, why


def assistance(spec: EngineSpec) -> tuple[Assistance | None, str | None]:
    """What spec.options ask for, and a notice when it cannot be had on this device. Pure: tested for each form."""
    options = spec.options
    draft, lookup = options.get("draft_path"), bool(options.get("prompt_lookup"))
    if not draft and not lookup:
        return None, None
    tokens = _count(options, "num_assistant_tokens", DEFAULT_ASSISTANT_TOKENS, MAX_ASSISTANT_TOKENS)
    kind = spec.device.split(".", maxsplit=1)[0].upper()
    if kind not in ("CPU", "GPU"):
        asked = "speculative decoding" if draft else "prompt lookup"
        return None, f"{asked} runs on a CPU or GPU only: {spec.device} answers without it."
    if draft:
        note = "prompt lookup is left out: a draft model is used instead (OpenVINO GenAI runs one or the other)" \
            if lookup else None
        return Assistance("draft", tokens, str(draft), str(options.get("draft_label") or "")), note
    return Assistance("prompt-lookup", tokens,
                      max_ngram_size=_count(options, "max_ngram_size", DEFAULT_NGRAM, MAX_NGRAM)), None
