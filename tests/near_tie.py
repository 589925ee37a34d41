"""Where two greedy answers of the same model part, was it a near-tie? Measured on the Phi-3-architecture test
model's fp32 checkpoint (PyTorch), which has the embedded SmolLM2's weights and vocabulary.

Greedy decoding picks the top token. Two code paths of one engine (one token per step, or several verified in
one pass, as prompt lookup and a draft do) round differently, and on some CPUs' kernels that flips the choice
where two tokens are almost equally likely: from there the answers differ, both the model's own. A wrong token
from a broken path is not near the top. `parting` finds the first token where two answers differ and how far
each of the two tokens is below the top logit there."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

TIE_LOGITS = 1.0  # both tokens within this of the top logit: a near-tie at the engines' precision (int4/int8 math)


@dataclass(frozen=True)
class Parting:
    at: int  # the token index where the answers part
    of: int  # tokens in the first answer
    gaps: tuple[float, float]  # each answer's token there, below the top logit

    @property
    def near_tie(self) -> bool:
        return max(self.gaps) <= TIE_LOGITS


@lru_cache(maxsize=1)
def _model(hf: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_grad_enabled(False)
    return AutoTokenizer.from_pretrained(hf), AutoModelForCausalLM.from_pretrained(hf, torch_dtype=torch.float32)


def parting(hf: Path, prompt: str, first: str, second: str) -> Parting | None:
    """None when the answers are the same tokens; `prompt` is the chat template's text, as the engine made it."""
    import torch

    tokenizer, model = _model(str(hf))
    a, b = (tokenizer.encode(t, add_special_tokens=False) for t in (first, second))
    at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    if a == b:
        return None
    context = tokenizer.encode(prompt, add_special_tokens=False) + a[:at]
    logits = model(torch.tensor([context])).logits[0, -1]
    top = float(logits.max())
    end = tokenizer.eos_token_id  # one answer ended where the other went on
    gaps = tuple(top - float(logits[(x[at] if at < len(x) else end)]) for x in (a, b))
    return Parting(at, len(a), gaps)
