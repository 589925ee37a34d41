"""The policy: a pure function (machine profile, catalog, preference, availability) -> ranking.

Every candidate carries its score and the reasons for it; every rejected pairing says why.
Where the ordering comes from (shared/reference/phi3-artifacts-and-devices.md):
- Batch-1 decode is memory-bandwidth bound (tokens/s ~ bandwidth / bytes per token, section F).
  The CPU, an integrated GPU and the NPU read the same DRAM, so their ceilings are close;
  a discrete GPU has its own, faster memory.
- The NPU wins on power, not raw speed (community figures, section F: ~7-10 tok/s on a 185H
  NPU): it leads when the user asks for efficiency, or on battery under `auto`.
- A DirectX 12 discrete GPU on Windows favours DirectML INT4 AWQ (section D); OpenVINO's GPU
  plugin serves Intel GPUs; an Intel CPU with nothing else favours OpenVINO INT4 on the CPU.
- The NPU needs symmetric INT4 weights (section A): only the channel-wise (cw) and group-wise (gq)
  builds list "npu"; gq first for accuracy, cw when the user asks for fastest.
- The Intel NPU Acceleration Library is archived upstream (section C): ranked after OpenVINO.
- Models rank by their quality tier (catalog.toml [[family]], from the model cards), builds of a model
  by bytes per token, and a shorter window (when memory is short) costs points but beats the embedded model.
- Measured beats estimated: the builds of one model that `--bench` measured on this machine (`Measured`)
  take the places the estimate gave them, in the order of their measured decode speed, and say
  "measured here: N tokens/s" instead of the estimate's reasons. Which model to run stays the estimate's
  choice (quality, size, the embedded fallback); efficiency first keeps its device order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from capabilities import MachineProfile

from .catalog import Artifact
from .engines import registry
from .fit import (
    GB,
    HEADROOM_PERCENT,
    MIN_WINDOW,
    fit_window,
    gb,
    required_bytes,
    slots_that_fit,
    weights_bytes,
    windows,
)
from .speeds import Measured, Measurement, follow_measurements
from .targets import FOREIGN_NPUS, Target, engine_reason
from .targets import targets as device_targets

__all__ = ["GB", "HEADROOM_PERCENT", "MIN_WINDOW", "FOREIGN_NPUS", "Availability", "Candidate", "Measured",
           "Measurement", "Preference", "Ranking", "Rejection", "follow_measurements", "rank", "required_bytes",
           "resolve_mode", "slots_that_fit", "weights_bytes", "windows"]

WINDOW_POINTS = 1.0  # score lost per halving of the window
CHANNEL_WISE_POINTS = 0.5  # channel-wise INT4: less accurate than group-wise; the NPU's fastest when asked for

# device class -> (speed prior, efficiency prior); see the module docstring
PRIORS: dict[str, tuple[float, float]] = {
    "gpu-discrete": (4.0, 1.0),
    "gpu-integrated": (3.0, 3.0),
    "npu": (2.0, 4.0),
    "cpu": (2.0, 1.0),
}
QUALITY_POINTS = 1.0  # score points per quality tier of the model (catalog.toml [[family]], with its sources)
QUALITY_FIRST_POINTS = 100.0  # per tier with --prefer quality: more than any device or build difference (< 50)
BYTES_PER_TOKEN_WEIGHT = 1.5  # score points per GB of weights
EMBEDDED_PENALTY = -100.0  # the embedded model only runs when no Phi-3 can
DEVICE_CHOICES = ("auto", "cpu", "gpu", "npu", "dml")
MODES = ("auto", "fastest", "efficient", "quality")  # --prefer: auto resolves to efficient on battery, else fastest


@dataclass(frozen=True)
class Preference:
    mode: str = "auto"  # auto | fastest | efficient | quality
    device: str = "auto"  # auto | cpu | gpu (any engine's GPU) | npu | dml (DirectML only)
    model: str | None = None  # an artifact id


@dataclass(frozen=True)
class Availability:
    """What can be had without downloading, and whether downloading is possible."""

    cached: frozenset[str] = frozenset()
    hub_reachable: bool = True
    hub_reason: str = ""
    offline: bool = False


@dataclass(frozen=True)
class Candidate:
    artifact: Artifact
    device_kind: str  # cpu | gpu (OpenVINO's GPU plugin) | npu | dml (a GPU through DirectML)
    device_id: str  # what the engine is given: "CPU", "GPU.1", "NPU", "dml:0"
    device_name: str
    score: float
    reasons: tuple[str, ...]
    context_length: int  # the window it runs with here: the artifact's own, or shorter when memory is short
    pool_bytes: int = 0  # the memory it was checked against (0: unknown, the probe could not read it)
    pool_name: str = ""

    @property
    def label(self) -> str:
        return f"{self.artifact.id} on {self.device_name}"


@dataclass(frozen=True)
class Rejection:
    artifact_id: str
    device_kind: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Ranking:
    candidates: tuple[Candidate, ...]
    rejected: tuple[Rejection, ...]
    preference: Preference = field(default_factory=Preference)
    mode: str = "fastest"  # the mode `auto` resolved to

    def to_dict(self) -> dict:
        return {
            "preference": {"mode": self.preference.mode, "device": self.preference.device,
                           "model": self.preference.model, "resolved_mode": self.mode},
            "candidates": [{"artifact": c.artifact.id, "engine": c.artifact.engine, "device": c.device_id,
                            "device_kind": c.device_kind, "context_length": c.context_length,
                            "score": round(c.score, 2), "reasons": list(c.reasons)}
                           for c in self.candidates],
            "rejected": [{"artifact": r.artifact_id, "device_kind": r.device_kind, "reasons": list(r.reasons)}
                         for r in self.rejected],
        }


def _wanted(device: str, kind: str) -> bool:
    """`--device gpu` means the best GPU by any engine (OpenVINO's GPU plugin or DirectML); `dml` DirectML only."""
    return device in ("auto", kind) or (device == "gpu" and kind == "dml")


def resolve_mode(pref: Preference, profile: MachineProfile) -> str:
    if pref.mode != "auto":
        return pref.mode
    return "efficient" if profile.power.on_battery else "fastest"


def _score(artifact: Artifact, target: Target, mode: str, profile: MachineProfile,
           cached: bool, window: int, window_note: str = "",
           quality: tuple[int, str] = (0, ""), asked_mode: str = "auto",
           measured: Measurement | None = None) -> tuple[float, list[str]]:
    speed, efficiency = PRIORS[target.device_class]
    if target.kind == "dml" and target.device_class == "gpu-integrated" and target.vendor == "Intel":
        speed -= 0.5  # on an Intel iGPU OpenVINO's GPU plugin is the tuned path, DirectML the generic one
    reasons = []
    if mode == "quality":
        score = speed * 10 + efficiency + (QUALITY_FIRST_POINTS - QUALITY_POINTS) * quality[0]
        reasons.append(f"{target.name}: quality first (the best model that fits), then speed")
    elif mode == "efficient":
        score = efficiency * 10 + speed
        reasons.append(f"{target.name}: efficiency first" + (" (on battery)" if profile.power.on_battery else ""))
    else:
        score = speed * 10 + efficiency
        reasons.append(f"{target.name}: speed first" + (" (on AC power)" if profile.power.on_battery is False else ""))
    if target.device_class == "npu":
        reasons.append("the NPU wins on power, not on raw speed")
    if measured is not None:  # instead of the estimate's reasons for speed (its points still place the model)
        reasons.append(f"measured here: {_rate(measured.tokens_per_s)} tokens/s"
                       + (f", first token {measured.ttft_s * 1000:.0f} ms" if measured.ttft_s > 0 else "")
                       + (f" (--bench, {measured.measured_at})" if measured.measured_at else " (--bench)"))
    elif target.device_class == "gpu-discrete":
        reasons.append("a discrete GPU decodes from its own memory, faster than shared DRAM")
    row = registry.get(artifact.engine)
    if target.kind == "cpu" and row.tuned_cpu:
        intel = profile.cpu.vendor == "GenuineIntel"
        if (row.tuned_cpu == "intel") == intel:
            score += 1.0
            if measured is None:
                reasons.append(row.tuned_note)
    if row.retired:
        score -= 15.0
        reasons.append(row.retired)
    if artifact.embedded:
        score += EMBEDDED_PENALTY
        reasons.append("embedded fallback: runs when no Phi-3 artifact can be had")
    tier, note = quality
    score += QUALITY_POINTS * tier
    if note:
        reasons.append(note)
    if not artifact.embedded:
        # Decode reads every weight once per token: fewer bytes, more tokens/s and less energy per token
        # (an INT8 build is ~1.8x the bytes of INT4, Phi-3-medium ~3.5x).
        score -= BYTES_PER_TOKEN_WEIGHT * artifact.download_bytes / GB
    if "npu" in artifact.devices and target.kind != "npu":
        score -= 0.5  # NPU builds (symmetric INT4 on every layer) trade a little accuracy for NPU compatibility
    # OpenVINO's NPU guide: symmetric INT4 with group size 128 for models up to ~5B (its example is
    # Phi-3.5-mini); channel-wise is the NPU's fastest layout but may lose accuracy. Accuracy first,
    # unless the user asked for fastest (not `auto` resolving to it).
    if artifact.group_size == -1:
        if target.kind == "npu" and asked_mode == "fastest":
            score += CHANNEL_WISE_POINTS
            reasons.append("channel-wise INT4: the NPU's fastest layout, first because you asked for fastest "
                           "(it may lose a little accuracy)")
        else:
            score -= CHANNEL_WISE_POINTS
            reasons.append("channel-wise INT4 may lose accuracy (OpenVINO's NPU guide): ranked after "
                           "group-wise builds unless you ask for fastest on the NPU")
    elif artifact.group_size == 128 and target.kind == "npu":
        reasons.append("symmetric INT4 with group size 128: what OpenVINO's NPU guide recommends for models "
                       "up to ~5B, more accurate than channel-wise")
    if cached:
        score += 2.0
        reasons.append("already on this PC: no download")
    elif not artifact.embedded:
        reasons.append(f"downloads {gb(artifact.download_bytes)} from {artifact.repo_id}")
    if window < artifact.context_length:
        # a shorter window keeps fewer turns of the chat: each halving costs WINDOW_POINTS
        score -= WINDOW_POINTS * math.log2(artifact.context_length / window)
        reasons.append(window_note)
    if target.pool_bytes:
        used = weights_bytes(artifact) + artifact.kv_bytes_per_token * window
        reasons.append(f"needs {gb(used)} of {target.pool_name}, {gb(target.pool_bytes)} available")
    return score, reasons


def _rate(tokens_per_s: float) -> str:
    return f"{tokens_per_s:.0f}" if tokens_per_s >= 10 else f"{tokens_per_s:.1f}"


def _availability_reason(artifact: Artifact, avail: Availability) -> str | None:
    if artifact.id in avail.cached:
        return None
    if avail.offline:
        return "not cached, and the app is offline"
    if not avail.hub_reachable and not artifact.embedded:
        return f"not cached, and {avail.hub_reason or 'the Hugging Face Hub is unreachable'}"
    return None


def _quality(artifact: Artifact, catalog: tuple[Artifact, ...]) -> tuple[int, str]:
    """The artifact's quality tier and why; a converted or local build of a known family takes the family's."""
    if artifact.quality_tier:
        return artifact.quality_tier, artifact.quality_note
    same = next((a for a in catalog if a.family == artifact.family and a.quality_tier), None)
    return (same.quality_tier, same.quality_note) if same else (0, "")


def rank(profile: MachineProfile, catalog: tuple[Artifact, ...], pref: Preference = Preference(),
         avail: Availability = Availability(), measured: Measured = Measured()) -> Ranking:
    mode = resolve_mode(pref, profile)
    candidates: list[Candidate] = []
    rejected: list[Rejection] = []
    asked = pref.model or "any model"
    if pref.device not in DEVICE_CHOICES:
        why = f"unknown device {pref.device!r}: choose one of {', '.join(DEVICE_CHOICES)}"
        return Ranking((), (Rejection(asked, pref.device, (why,)),), pref, mode)
    if pref.model and not any(a.id == pref.model for a in catalog):
        why = f"{pref.model!r} is not in the catalog (`--explain` without --model lists every id)"
        return Ranking((), (Rejection(pref.model, pref.device, (why,)),), pref, mode)
    for artifact in catalog:
        if pref.model and artifact.id != pref.model:
            continue
        if pref.model and not any(_wanted(pref.device, k) for k in artifact.devices):
            why = f"this build runs on {', '.join(artifact.devices)} only, not on {pref.device}"
            rejected.append(Rejection(artifact.id, pref.device, (why,)))
        for kind in artifact.devices:
            if not _wanted(pref.device, kind):
                continue
            if artifact.on_request and not pref.model and pref.mode != "quality":
                rejected.append(Rejection(artifact.id, kind, (
                    artifact.on_request_note or "outside the default choice",
                    "ask for it by id (--model, the page's model list) or with --prefer quality")))
                continue
            blockers = [r for r in (engine_reason(artifact, kind, profile),
                                    _availability_reason(artifact, avail)) if r]
            targets, why = device_targets(artifact, kind, profile)
            fitting, short = [], []
            for t in targets:
                window, note = fit_window(artifact, t, profile)
                if window:
                    fitting.append((t, window, note))
                else:
                    short.append(note)
            if blockers or not fitting:
                rejected.append(Rejection(artifact.id, kind, tuple(blockers + why + short)))
                continue
            if short:  # some devices of this kind fit, others do not: say which and why
                rejected.append(Rejection(artifact.id, kind, tuple(short)))
            for t, window, note in fitting:
                score, reasons = _score(artifact, t, mode, profile, artifact.id in avail.cached, window, note,
                                        _quality(artifact, catalog), pref.mode, measured.get(artifact, t.device_id))
                candidates.append(Candidate(artifact, t.kind, t.device_id, t.name, score, tuple(reasons), window,
                                            t.pool_bytes, t.pool_name))
    candidates.sort(key=lambda c: -c.score)
    if measured.figures:
        candidates = follow_measurements(candidates, measured, mode)
    return Ranking(tuple(candidates), tuple(rejected), pref, mode)
