"""The KV cache of OpenVINO GenAI's continuous batching: bytes per token read from the IR, the pool's size in whole GB,
and the bytes per value on a device."""

from __future__ import annotations

import math
from pathlib import Path


def kv_bytes_per_token(model_xml: Path, value_bytes: int) -> int:
    """Bytes the KV cache holds per token: each key/value state of the stateful IR is [batch, kv heads, seq,
    head size]. Read from the IR (weights are not loaded: read_model maps them)."""
    import openvino

    model = openvino.Core().read_model(str(model_xml))
    per_token = 0
    for op in model.get_ordered_ops():
        if op.get_type_name() == "ReadValue":
            shape = op.get_output_partial_shape(0)
            if shape.rank.is_static and len(shape) == 4 and shape[1].is_static and shape[3].is_static:
                per_token += shape[1].get_length() * shape[3].get_length()
    if not per_token:
        raise ValueError(f"{model_xml} has no key/value states of the usual shape")
    return per_token * value_bytes



def cache_gb(window: int, slots: int, bytes_per_token: int) -> int:
    """The KV-cache pool (SchedulerConfig.cache_size, whole GB): every slot can hold a full window. Pure."""
    return max(1, math.ceil(window * slots * bytes_per_token / 2**30))



def kv_value_bytes(device: str, config: dict) -> int:
    """f32 KV cache: 4 bytes a value; f16 (GPU) and u8 with its scales (CPU default) are counted as 2."""
    try:
        import openvino

        precision = str(openvino.Core().get_property(device.split(".", maxsplit=1)[0], "KV_CACHE_PRECISION"))
    except Exception:  # noqa: BLE001 - a device without the property: count f16
        precision = ""
    return 4 if "f32" in precision or "float32" in precision else 2
