"""A real Phi-3-architecture test model, built once per machine from the embedded SmolLM2-135M weights.

    python -m tools.phi3_test_model        # build everything (about 4 minutes here), print the folders

Steps (versions and traps: shared/reference/conversion-and-runtime-notes.md):
1. the GGUF -> a Hugging Face Llama model (transformers, `gguf_file=`), dequantised to fp32;
2. the tokenizer repaired: transformers builds a wrong one from this GGUF (eos <|im_start|>, a start
   token on every encode); rebuilt as GPT2TokenizerFast over the same vocabulary, eos <|im_end|>;
3. the same weights in a `Phi3ForCausalLM` (q/k/v fused into qkv_proj, gate/up into gate_up_proj),
   whose logits must match the Llama model's;
4. exports with the product's own conversion commands (models/convert.py): OpenVINO INT4 with the
   cookbook's flags, FP16, the NPU flags, and the ONNX Runtime GenAI builder (INT4, CPU).
Each folder is built into a temporary name and renamed when complete: a half-built folder never counts.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from models.catalog import embedded_default, load_catalog  # noqa: E402
from models.convert import TARGETS, convert  # noqa: E402
from models.settings import load_settings  # noqa: E402
from models.store import fetch_embedded  # noqa: E402

VERSION = 1  # bump to rebuild every cached copy
MAX_LOGIT_DIFF = 1e-3


@dataclass(frozen=True)
class TestModels:
    hf: Path
    exports: dict[str, Path]  # convert target -> folder
    max_logit_diff: float


def root() -> Path:
    """Shared across test runs (the one expensive build): PHI3PC_TEST_MODELS, set by tests/conftest.py to
    the user's app cache, while each run's own PHI3PC_HOME is a fresh folder."""
    base = os.environ.get("PHI3PC_TEST_MODELS")
    return (Path(base) if base else load_settings().home / "test-models") / f"phi3-smollm2-v{VERSION}"


def _repair_tokenizer(broken):
    """The vocabulary and merges are right; pre-tokenizer, decoder and special tokens are not."""
    from tokenizers import decoders, pre_tokenizers
    from transformers import GPT2TokenizerFast

    backend = broken.backend_tokenizer
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = None  # no start token prepended
    tok = GPT2TokenizerFast(tokenizer_object=backend, bos_token="<|im_start|>", eos_token="<|im_end|>",
                            pad_token="<|im_end|>", unk_token="<|endoftext|>", add_bos_token=False)
    tok.chat_template = broken.chat_template
    return tok


def _phi3_from_llama(llama):
    import torch
    from transformers import Phi3Config, Phi3ForCausalLM

    c = llama.config
    config = Phi3Config(
        vocab_size=c.vocab_size, hidden_size=c.hidden_size, intermediate_size=c.intermediate_size,
        num_hidden_layers=c.num_hidden_layers, num_attention_heads=c.num_attention_heads,
        num_key_value_heads=c.num_key_value_heads, hidden_act=c.hidden_act, rms_norm_eps=c.rms_norm_eps,
        max_position_embeddings=c.max_position_embeddings, original_max_position_embeddings=c.max_position_embeddings,
        rope_parameters={"rope_theta": c.rope_parameters["rope_theta"], "rope_type": "default"},
        tie_word_embeddings=True, sliding_window=None, bos_token_id=1, eos_token_id=2, pad_token_id=2,
        attention_bias=False,
    )
    phi3 = Phi3ForCausalLM(config).eval()
    src, dst = llama.model, phi3.model
    with torch.no_grad():
        dst.embed_tokens.weight.copy_(src.embed_tokens.weight)
        dst.norm.weight.copy_(src.norm.weight)
        for a, b in zip(src.layers, dst.layers, strict=True):
            att = a.self_attn
            b.self_attn.qkv_proj.weight.copy_(torch.cat([att.q_proj.weight, att.k_proj.weight, att.v_proj.weight]))
            b.self_attn.o_proj.weight.copy_(att.o_proj.weight)
            b.mlp.gate_up_proj.weight.copy_(torch.cat([a.mlp.gate_proj.weight, a.mlp.up_proj.weight]))
            b.mlp.down_proj.weight.copy_(a.mlp.down_proj.weight)
            b.input_layernorm.weight.copy_(a.input_layernorm.weight)
            b.post_attention_layernorm.weight.copy_(a.post_attention_layernorm.weight)
    phi3.tie_weights()
    return phi3


def _max_logit_diff(a, b, tok) -> float:
    import torch

    ids = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"]
    with torch.no_grad():
        return float((a(ids).logits - b(ids).logits).abs().max())


def build_hf(dest: Path) -> float:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = fetch_embedded(embedded_default(load_catalog()), load_settings())
    llama = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    tok = _repair_tokenizer(AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name))
    phi3 = _phi3_from_llama(llama)
    diff = _max_logit_diff(llama, phi3, tok)
    if diff > MAX_LOGIT_DIFF:
        raise RuntimeError(f"the Phi-3 copy differs from the source model: max |logit diff| {diff}")
    tmp = dest.with_name(dest.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    phi3.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    phi3.generation_config.save_pretrained(tmp)
    (tmp / "logit_check.json").write_text(json.dumps({"max_abs_logit_diff": diff}))
    tmp.rename(dest)
    return diff


def build(targets: tuple[str, ...] = tuple(TARGETS), log=print) -> TestModels:
    base = root()
    base.mkdir(parents=True, exist_ok=True)
    hf = base / "hf"
    if not (hf / "logit_check.json").is_file():
        from models import tools

        tools.ensure(log)
        log(f"building the Phi-3 test checkpoint in {hf} ...")
        shutil.rmtree(hf, ignore_errors=True)
        build_hf(hf)
    diff = json.loads((hf / "logit_check.json").read_text())["max_abs_logit_diff"]
    exports = {}
    for target in targets:
        out = base / target
        if not (out / ".complete").is_file():
            log(f"exporting {target} ...")
            convert(str(hf), target, out, log=log)
        exports[target] = out
    return TestModels(hf=hf, exports=exports, max_logit_diff=diff)


if __name__ == "__main__":
    models = build()
    print(json.dumps({"hf": str(models.hf), "max_logit_diff": models.max_logit_diff,
                      **{k: str(v) for k, v in models.exports.items()}}, indent=2))
