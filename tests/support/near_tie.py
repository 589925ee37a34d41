"""Where two greedy answers of the same model part, was it a near-tie? Measured on the Phi-3-architecture test
model's fp32 checkpoint (PyTorch), which has the embedded SmolLM2's weights, vocabulary and chat template.

Greedy decoding picks the top token. Two code paths of one engine (one token per step, or several verified in
one pass, as prompt lookup and a draft do; one request alone, or in a batch) round differently, and on some
CPUs' kernels that flips the choice where two tokens are almost equally likely: from there the answers differ,
both the model's own. A wrong token from a broken path is far from the right one. `parting` finds the first
token where two answers differ and how far each of the two tokens is below the top logit there; a near-tie is
two tokens within TIE_LOGITS of each other (under a JSON grammar the top logit itself may be a token the grammar
forbids, so the two are compared with each other)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

TIE_LOGITS = 1.0  # the two tokens this close: a near-tie at the engines' precision (int4/int8 math, other kernels)


@dataclass(frozen=True)
class Parting:
    at: int  # the token index where the answers part
    of: int  # tokens in the first answer
    gaps: tuple[float, float]  # each answer's token there, below the top logit

    @property
    def near_tie(self) -> bool:
        return abs(self.gaps[0] - self.gaps[1]) <= TIE_LOGITS


@lru_cache(maxsize=1)
def _model(hf: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_grad_enabled(False)
    return AutoTokenizer.from_pretrained(hf), AutoModelForCausalLM.from_pretrained(hf, torch_dtype=torch.float32)


def parting(hf: Path, messages: list[dict], first: str, second: str) -> Parting | None:
    """None when the answers are the same tokens. `messages` are what both answered (the chat template is the
    checkpoint's, the same text the engines' templates make)."""
    import torch

    tokenizer, model = _model(str(hf))
    a, b = (tokenizer.encode(t, add_special_tokens=False) for t in (first, second))
    if a == b:
        return None
    at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    context = tokenizer.encode(prompt, add_special_tokens=False) + a[:at]
    logits = model(torch.tensor([context])).logits[0, -1]
    top = float(logits.max())
    end = tokenizer.eos_token_id  # one answer ended where the other went on
    gaps = tuple(top - float(logits[(x[at] if at < len(x) else end)]) for x in (a, b))
    return Parting(at, len(a), gaps)


def same_until_near_tie(hf: Path, messages: list[dict], expected: str, got: str, prefix: bool = False):
    """Asserts that `got` (another code path's greedy answer) is `expected` (the plain path's) until a near-tie,
    and returns where they parted (None: the same). With `prefix`, `got` may end early (a stop string cut it)."""
    if got == expected or (prefix and expected.startswith(got.rstrip())):
        return None
    parted = parting(hf, messages, expected, got)
    assert parted is not None and parted.near_tie, (parted, expected, got)
    return parted
