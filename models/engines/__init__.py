"""Engine adapters behind one streaming seam (see base.py); which adapter reads what: registry.py."""

from __future__ import annotations

from . import registry
from .base import Engine, EngineSpec, Message, Reply, ReplyStats
from .sampling import JsonSchema, ResponseFormatError, Sampling


def load(spec: EngineSpec) -> Engine:
    """Load an engine; heavy packages are imported only for the engine asked for."""
    try:
        row = registry.get(spec.engine)
    except registry.UnknownEngine:
        from ..errors import EngineLoadError

        raise EngineLoadError(f"the {spec.engine} engine is not available in this version yet") from None
    if spec.parallel > 1 and row.batches_on(spec.device_kind):  # the NPU: static shapes, batch 1
        return registry.resolve(row.batching_adapter)(spec)
    return registry.resolve(row.adapter)(spec)


__all__ = ["Engine", "EngineSpec", "JsonSchema", "Message", "Reply", "ReplyStats", "ResponseFormatError", "Sampling",
           "load", "registry"]
