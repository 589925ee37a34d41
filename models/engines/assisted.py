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

JSON answers with a draft (models/engines/assisted.py `json_with_draft`, measured on OpenVINO GenAI 2026.4.1): no
request of a pipeline with a draft can run without it (ContinuousBatchingPipeline.step() asserts "Speculative decoding
should have initialized options `assistant_confidence_threshold` xor `num_assistant_tokens`" for num_assistant_tokens 0,
and generate() sets 0 to its default 5), so a JSON request is a speculative one. Its grammar mask is then sized by the
tokenizer's vocabulary, not by the model's output (the speculative path builds its logit processors without the logits'
width; plain decoding passes it): when the tokenizer has more entries than the model has logits, xgrammar writes the
mask past the end of the logits buffer (the Phi-3-architecture test model: 49157 tokens, 49152 logits; glibc "double
free or corruption" on the first JSON request, MALLOC_CHECK_=3); when it has fewer (Phi-3-mini: 32011 tokens, 32064
logits), the ids past the tokenizer are never masked and an answer can leave the schema (measured on a padded copy of
the test model whose extra ids are likely: 0 of 4 answers parsed with the draft, 4 of 4 without). When both are equal
JSON answers are exact and identical with and without the draft. So a draft and a JSON schema share a pipeline only
when the tokenizer's vocabulary equals the logits' width of the model and of the draft. Otherwise a draft the app
chose itself (`optional`) gives way: the model loads without it and JSON answers stay; a draft the user forced
(`--draft PATH`, `--draft always`) stays, and response_format is refused (a 400) with the reason.

Figures: tokens per step (each step runs the model once) for both kinds. The draft's acceptance rate where OpenVINO
GenAI reports it per answer (LLMPipeline's SDPerModelsPerfMetrics: accepted / proposed). The step API reports none
per request (GenerationHandle.get_perf_metrics is plain PerfMetrics, PipelineMetrics has no speculative fields, and the
pipeline's SpeculativeDecodingMetrics are not in the Python API), so the batching engine gives a lower bound from what
it sees: every step with tokens gives at most one token of the model's own and takes at most num_assistant_tokens
proposals (none in the first, the prompt's), so at least (tokens - steps) / (num_assistant_tokens x (steps - 1)) of
the proposals were accepted. Prompt lookup reports no extended metrics at all.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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
    optional: bool = False  # a draft the app chose itself: it gives way when it would cost JSON answers
    json_problem: str = ""  # why a JSON schema cannot meet this draft in one pipeline ("" when it can)

    @property
    def blocks_structured_output(self) -> str:
        """Why an engine with this assistance must refuse JSON schemas ("" when it need not)."""
        if self.kind != "draft" or not self.json_problem:
            return ""
        return (f"while the draft model runs: {self.json_problem}. Ask without response_format, or start the app "
                "with --no-draft for JSON answers")

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

    def notice(self, stats: ReplyStats, at_least: float | None = None) -> str | None:
        """The figures' addition: tokens per step, and the draft's acceptance where the engine reports it (or, with
        `at_least`, a lower bound of it)."""
        if stats.tokens_per_step is None:
            return None
        line = f"{self.what}: {stats.tokens_per_step:.1f} tokens per step"
        if stats.draft_acceptance is not None:
            line += f", {stats.draft_acceptance:.0%} of the draft's tokens accepted"
        elif at_least is not None:
            line += f", at least {at_least:.0%} of the draft's tokens accepted"
        return line

    def accepted_at_least(self, tokens: int, steps: int) -> float | None:
        """A lower bound of the draft's acceptance from what the step API shows (see the module's doc). Pure."""
        if self.kind != "draft" or steps < 2:
            return None
        return max(0.0, min(1.0, (tokens - steps) / (self.num_assistant_tokens * (steps - 1))))


def structured_output_with(assist: Assistance | None) -> tuple[bool, str]:
    """(can an OpenVINO GenAI engine with this assistance hold JSON schemas, and the note when it cannot)."""
    why = assist.blocks_structured_output if assist is not None else ""
    return not why, why


def vocabulary_size(folder: Path) -> int | None:
    """The tokenizer's vocabulary as OpenVINO GenAI reads it (the detokenizer's VocabDecoder: one entry per id,
    added tokens included); None when it cannot be read."""
    import xml.etree.ElementTree as ET

    try:
        for _, layer in ET.iterparse(folder / "openvino_detokenizer.xml"):
            if layer.tag == "layer" and layer.get("type") == "VocabDecoder":
                port = layer.find("./input/port[@id='1']/dim")
                return int(port.text) if port is not None and port.text else None
    except (OSError, ET.ParseError, ValueError):
        return None
    return None


def logits_width(folder: Path) -> int | None:
    """The model's output: logits per position (read_model maps the weights, loads nothing); None when unknown."""
    try:
        import openvino

        shape = openvino.Core().read_model(str(folder / "openvino_model.xml")).output(0).get_partial_shape()
        return shape[len(shape) - 1].get_length() if shape.rank.is_static and shape[len(shape) - 1].is_static \
            else None
    except Exception:  # noqa: BLE001 - a folder OpenVINO cannot read: unknown
        return None


def ir_folder(path: Path) -> Path | None:
    """The OpenVINO IR folder of a model path: the folder itself, or the IR OpenVINO GenAI wrote beside a GGUF."""
    folder = path.parent if path.suffix.lower() == ".gguf" else path
    return folder if (folder / "openvino_model.xml").is_file() else None


def json_problem(*paths: Path) -> str:
    """Why JSON answers cannot be held in a pipeline with a draft model for these models (the target, then the
    draft): "" when each model's tokenizer vocabulary equals its logits' width (see the module's doc)."""
    for path in paths:
        folder = ir_folder(Path(path))
        vocab = vocabulary_size(folder) if folder else None
        width = logits_width(folder) if folder else None
        name = Path(path).name
        if vocab is None or width is None:
            return (f"OpenVINO GenAI holds JSON answers with a draft model only when the tokenizer and the model's "
                    f"output have the same size, and that of {name} cannot be read")
        if vocab != width:
            return (f"OpenVINO GenAI 2026.4 sizes the JSON grammar of a speculative request by the tokenizer "
                    f"({vocab} tokens), not by the model's output ({width} logits), for {name}: with a draft, JSON "
                    "answers would "
                    + ("corrupt memory" if vocab > width else "not be held to the schema"))
    return ""


def settle_json(assist: Assistance | None, target: Path) -> tuple[Assistance | None, str | None]:
    """Can this draft share the pipeline with JSON answers? A draft that cannot gives way when it is optional (the
    model runs without it, said in the returned notice) and otherwise stays, with JSON answers refused."""
    if assist is None or assist.kind != "draft":
        return assist, None
    why = json_problem(target, Path(assist.draft_path))
    if not why:
        return assist, None
    if assist.optional:
        return None, (f"{assist.what} is not used: {why}. The model answers without it, JSON answers included; "
                      "`--draft always` keeps the draft (and refuses JSON answers).")
    return replace(assist, json_problem=why), f"JSON answers are refused while {assist.what} runs: {why}."


def assistance(spec: EngineSpec) -> tuple[Assistance | None, str | None]:
    """What spec.options ask for, and a notice when it cannot be had on this device. Pure: tested for each form."""
    options = spec.options
    draft, lookup = options.get("draft_path"), bool(options.get("prompt_lookup"))
    if not draft and not lookup:
        return None, None
    tokens = _count(options, "num_assistant_tokens", DEFAULT_ASSISTANT_TOKENS, MAX_ASSISTANT_TOKENS)
    from .registry import get

    if spec.device_kind not in get(spec.engine).assisted:
        asked = "speculative decoding" if draft else "prompt lookup"
        return None, f"{asked} runs on a CPU or GPU only: {spec.device} answers without it."
    if draft:
        note = "prompt lookup is left out: a draft model is used instead (OpenVINO GenAI runs one or the other)" \
            if lookup else None
        return Assistance("draft", tokens, str(draft), str(options.get("draft_label") or ""),
                          optional=bool(options.get("draft_optional"))), note
    return Assistance("prompt-lookup", tokens,
                      max_ngram_size=_count(options, "max_ngram_size", DEFAULT_NGRAM, MAX_NGRAM)), None
