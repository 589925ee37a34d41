"""How much memory an artifact needs on a device: weights plus a KV cache per token of its window, with headroom;
the longest window that fits a pool, and how many answers at once fit. Pure."""

from __future__ import annotations

from capabilities import MachineProfile

from .catalog import Artifact
from .targets import Target

GB = 1_000_000_000

HEADROOM_PERCENT = 10  # need + 10 % must fit the pool: the OS, the browser and the runtime's buffers

MIN_WINDOW = 1024  # the shortest window offered when memory is short (powers of two from the artifact's down)


def gb(n: float) -> str:
    return f"{n / GB:.1f} GB"


def weights_bytes(artifact: Artifact) -> int:
    """What the model needs besides its KV cache (catalog: run memory at the full window minus its KV cache)."""
    return artifact.run_memory_bytes - artifact.kv_bytes_per_token * artifact.context_length


def required_bytes(artifact: Artifact, window: int | None = None) -> int:
    """Weights plus the KV cache of `window` tokens (default: the artifact's full window), plus headroom."""
    need = weights_bytes(artifact) + artifact.kv_bytes_per_token * (window or artifact.context_length)
    return need + need * HEADROOM_PERCENT // 100


def slots_that_fit(candidate, wanted: int) -> tuple[int, str]:
    """How many answers at once fit the memory the candidate was checked against: each slot keeps a KV cache
    of the candidate's whole window (the batching engine's pool is window x slots), the weights are shared.
    At least one (the candidate fits one by construction); with a note when fewer than `wanted` fit."""
    art, window = candidate.artifact, candidate.context_length
    if wanted <= 1 or not art.kv_bytes_per_token or not candidate.pool_bytes:
        return max(1, wanted), ""  # no KV figure or no memory figure: nothing to check against
    per_slot = art.kv_bytes_per_token * window

    def need(slots: int) -> int:
        total = weights_bytes(art) + per_slot * slots
        return total + total * HEADROOM_PERCENT // 100

    slots = wanted
    while slots > 1 and need(slots) > candidate.pool_bytes:
        slots -= 1
    if slots == wanted:
        return slots, ""
    return slots, (f"{slots} answer{'s' if slots > 1 else ''} at once instead of {wanted}: each one keeps a "
                   f"{tokens(window)}-token KV cache of {gb(per_slot)}, and {wanted} need {gb(need(wanted))} of "
                   f"{candidate.pool_name or 'memory'} with the weights, {gb(candidate.pool_bytes)} available")


def windows(artifact: Artifact) -> list[int]:
    """The windows to try, longest first: the artifact's own, then powers of two down to MIN_WINDOW.
    Without a per-token KV figure only the full window is known to be right."""
    full = artifact.context_length
    out = [full]
    if artifact.kv_bytes_per_token:
        w = 1 << (full - 1).bit_length() - 1  # the largest power of two below full
        while w >= MIN_WINDOW:
            out.append(w)
            w //= 2
    return out


def tokens(n: int) -> str:
    return f"{n // 1024}K" if n % 1024 == 0 else str(n)


def fit_window(artifact: Artifact, t: Target, profile: MachineProfile) -> tuple[int, str]:
    """The longest window whose memory fits the pool the device really uses (checked before anything is
    downloaded), with a note when it is shorter than the artifact's own; window 0 and the reason when
    not even the shortest fits."""
    full = artifact.context_length
    if t.pool_name.startswith("RAM") and profile.memory.total_bytes == 0:
        return full, ""  # memory unknown (the probe says why): let the load try
    need = required_bytes(artifact)
    for w in windows(artifact):
        if required_bytes(artifact, w) <= t.pool_bytes:
            if w == full:
                return w, ""
            return w, (f"runs with a {tokens(w)}-token window on this PC ({tokens(full)} needs {gb(need)} of "
                       f"{t.pool_name} with headroom, {gb(t.pool_bytes)} available): the chat keeps fewer turns")
    msg = f"needs {gb(need)} of {t.pool_name} (with headroom), {gb(t.pool_bytes)} available on {t.name}"
    smallest = windows(artifact)[-1]
    least = required_bytes(artifact, smallest)
    if smallest != full:
        msg += f"; even a {tokens(smallest)}-token window needs {gb(least)}"
    if t.pool_name.startswith("RAM") and least <= profile.memory.total_bytes * 0.85:
        msg += f" ({gb(profile.memory.total_bytes)} in all: closing other apps may free enough)"
    return 0, msg
