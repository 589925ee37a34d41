"""The limit: decode reads every weight and the KV cache so far once per token, so tokens/s cannot pass
memory read bandwidth ÷ bytes read per token. Each decode figure is reported as a fraction of that."""

from __future__ import annotations

import json
from pathlib import Path

from models.engines import registry

from .targets import Target, weights_bytes


def _model_shape(folder: Path) -> tuple[int, int, int] | None:
    """(layers, KV heads, head size) from the model's own config files."""
    try:
        genai = folder / "genai_config.json"
        if genai.is_file():
            d = json.loads(genai.read_text())["model"]["decoder"]
            return int(d["num_hidden_layers"]), int(d["num_key_value_heads"]), int(d["head_size"])
        c = json.loads((folder / "config.json").read_text())
        heads = int(c["num_attention_heads"])
        head = int(c.get("head_dim") or c["hidden_size"] // heads)
        return int(c["num_hidden_layers"]), int(c.get("num_key_value_heads") or heads), head
    except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError):
        return None


def kv_value_bytes(target: Target) -> tuple[float, str]:
    """Bytes per cached key/value element as the engine keeps them on this device, and what that is (the registry's
    `kv_value` hook; f16 for an engine without one)."""
    hook = registry.get(target.engine).kv_value
    return registry.resolve(hook)(target.device_id) if hook else (2.0, "f16")


def kv_bytes_per_token(target: Target) -> tuple[int, str]:
    """KV-cache bytes each token of context holds, and where the shape came from."""
    value, precision = kv_value_bytes(target)
    folder = target.path if target.path.is_dir() else target.path.parent
    shape = _model_shape(folder)
    if shape:
        layers, kv_heads, head = shape
        how = f"{layers} layers x 2 x {kv_heads} KV heads x {head}, {precision}"
        return int(layers * 2 * kv_heads * head * value), how
    if target.artifact.kv_bytes_per_token:  # the catalog's figure is for f16
        return int(target.artifact.kv_bytes_per_token * value / 2), f"catalog figure, {precision}"
    return 0, "unknown (no config.json or genai_config.json)"


def limit(target: Target, bandwidth: float, prompt_tokens: int, new_tokens: int, measured_tps: float) -> dict:
    weights = weights_bytes(target)
    per_token, how = kv_bytes_per_token(target)
    kv = per_token * (prompt_tokens + new_tokens / 2)  # the KV cache read at the middle of the answer
    total = weights + kv
    ceiling = bandwidth / total if total else 0.0
    out = {"weights_bytes": weights, "kv_cache_bytes": int(kv), "bytes_per_token": int(total),
           "kv_bytes_per_token_of_context": per_token, "kv_shape": how}
    if ceiling > 0 and measured_tps > 0:
        out.update(ceiling_tokens_per_s=ceiling, fraction=measured_tps / ceiling)
    return out
