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
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from capabilities import Device, MachineProfile

from .catalog import Artifact

GB = 1_000_000_000
HEADROOM_PERCENT = 10  # need + 10 % must fit the pool: the OS, the browser and the runtime's buffers
MIN_WINDOW = 1024  # the shortest window offered when memory is short (powers of two from the artifact's down)
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
ENGINE_DIST = {"openvino-genai": "openvino-genai", "npu-acceleration-library": "intel-npu-acceleration-library"}


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
class Measurement:
    """One (artifact, device) as `--bench` measured it on this machine."""

    tokens_per_s: float  # decode, median of the runs
    ttft_s: float = 0.0  # first token for the short prompt, median
    path: str = ""  # a local model (`--model PATH`) is known by its name only: the path measured must match
    measured_at: str = ""  # ISO date of the run


@dataclass(frozen=True)
class Measured:
    """Speeds measured on this machine, by (artifact id, device id); empty: everything is estimated."""

    figures: Mapping[tuple[str, str], Measurement] = field(default_factory=dict)

    def get(self, artifact: Artifact, device_id: str) -> Measurement | None:
        m = self.figures.get((artifact.id, device_id))
        if m is None or m.tokens_per_s <= 0 or not math.isfinite(m.tokens_per_s):
            return None
        if artifact.source == "local" and m.path and artifact.path and m.path != artifact.path:
            return None  # another folder of the same name
        return m


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


def _gb(n: float) -> str:
    return f"{n / GB:.1f} GB"


@dataclass(frozen=True)
class _Target:
    kind: str
    device_id: str
    name: str
    device_class: str  # key of PRIORS
    pool_bytes: int
    pool_name: str
    vendor: str = ""


def _targets(artifact: Artifact, kind: str, profile: MachineProfile) -> tuple[list[_Target], list[str]]:
    """The concrete devices an artifact could use for one device kind, or why there are none."""
    ram = profile.memory.available_bytes
    if kind == "cpu":
        return [_Target("cpu", "CPU", f"CPU ({profile.cpu.brand})", "cpu", ram, "RAM")], []
    if kind == "gpu":
        if artifact.engine != "openvino-genai":
            return [], ["GPU path is OpenVINO's"]
        gpus = [d for d in profile.devices if d.kind == "gpu" and d.source == "openvino" and d.present]
        if not gpus:
            return [], [_absent_reason(profile, "gpu", "no GPU for OpenVINO", ("openvino",))]
        return [_gpu_target(d, ram, d.id) for d in gpus], []
    if kind == "npu":
        source = "openvino" if artifact.engine == "openvino-genai" else None
        npus = [d for d in profile.devices if d.kind == "npu" and d.present and d.vendor in ("Intel", "")
                and (source is None or d.source == source)]
        if artifact.engine == "npu-acceleration-library" and profile.system.os != "Windows":
            return [], ["Intel NPU Acceleration Library runs on Windows only (its wheels)"]
        if not npus:
            others = [d for d in profile.devices if d.kind == "npu" and d.present and d.vendor not in ("Intel", "")]
            if others:  # a driver would not help: say what the NPU is and what does run Phi-3 on it
                return [], [_foreign_npu_reason(others[0])]
            return [], [_absent_reason(profile, "npu", "no Intel NPU found")]  # any source: sysfs, pnp
        d = npus[0]
        return [_Target("npu", "NPU", f"NPU ({d.name})", "npu", ram, "RAM")], []
    if kind == "dml":
        if profile.system.os != "Windows":
            return [], ["DirectML needs Windows with a DirectX 12 GPU"]
        adapters = [d for d in profile.devices if d.source == "dxgi" and d.present]
        if not adapters:
            return [], [_absent_reason(profile, "gpu", "no DirectX 12 GPU found", ("dxgi",))]
        # DirectML is pointed at the adapter by its LUID (unambiguous), else by its DXGI index
        return [_gpu_target(d, ram, f"dml:{d.properties.get('luid') or d.properties.get('index', i)}", "DirectML ",
                            kind="dml")
                for i, d in enumerate(adapters)], []
    return [], [f"unknown device kind {kind}"]


def _gpu_target(d: Device, ram: int, device_id: str, via: str = "", kind: str = "gpu") -> _Target:
    """A GPU target; kind "dml" when DirectML drives it (its name still says it is a GPU)."""
    if d.discrete:
        pool = d.memory_bytes or 0
        return _Target(kind, device_id, f"{via}discrete GPU ({d.name})", "gpu-discrete", pool, "GPU memory",
                       d.vendor)
    return _Target(kind, device_id, f"{via}integrated GPU ({d.name})", "gpu-integrated", ram, "RAM (shared)",
                   d.vendor)


# What runs Phi-3 on NPUs this app cannot drive (shared/reference/phi3-artifacts-and-devices.md, sections A, D):
# AMD's Ryzen AI builds of ONNX Runtime GenAI (VitisAI EP, not in the public wheel) and Qualcomm's QNN
# context binaries (Qualcomm AI Hub / Genie).
FOREIGN_NPUS = {
    "AMD": ("an AMD XDNA NPU", "AMD's Ryzen AI software (Ryzen AI builds of ONNX Runtime GenAI, "
            "amd/Phi-3.5-mini-instruct-…-onnx-ryzen-strix)"),
    "Qualcomm": ("a Qualcomm Hexagon NPU", "Qualcomm's QNN runtime with the Qualcomm AI Hub build "
                 "(qualcomm/Phi-3.5-mini-instruct)"),
}


def _foreign_npu_reason(d: Device) -> str:
    what, theirs = FOREIGN_NPUS.get(d.vendor, (f"a {d.vendor} NPU", f"{d.vendor}'s own NPU software"))
    return (f"this is {what} ({d.name}): OpenVINO and the Intel NPU library run only on Intel NPUs; "
            f"{theirs} runs Phi-3 on it, which this app does not support yet")


def _absent_reason(profile: MachineProfile, kind: str, default: str, sources: tuple[str, ...] = ()) -> str:
    """Prefer the probe's own explanations (e.g. 'intel_vpu driver not loaded')."""
    reasons = [d.reason for d in profile.devices
               if d.kind == kind and not d.present and d.reason and (not sources or d.source in sources)]
    return f"{default}: {'; '.join(dict.fromkeys(reasons))}" if reasons else default


def _engine_reason(artifact: Artifact, kind: str, profile: MachineProfile) -> str | None:
    if artifact.engine == "onnxruntime-genai":
        dml = profile.engine_version("onnxruntime-genai-directml")
        if kind == "dml":
            return None if dml else "onnxruntime-genai-directml is not installed (Windows only)"
        return None if (dml or profile.engine_version("onnxruntime-genai")) else "onnxruntime-genai is not installed"
    dist = ENGINE_DIST[artifact.engine]
    return None if profile.engine_version(dist) else f"{dist} is not installed"


def _wanted(device: str, kind: str) -> bool:
    """`--device gpu` means the best GPU by any engine (OpenVINO's GPU plugin or DirectML); `dml` DirectML only."""
    return device in ("auto", kind) or (device == "gpu" and kind == "dml")


def resolve_mode(pref: Preference, profile: MachineProfile) -> str:
    if pref.mode != "auto":
        return pref.mode
    return "efficient" if profile.power.on_battery else "fastest"


def _score(artifact: Artifact, target: _Target, mode: str, profile: MachineProfile,
           cached: bool, window: int, window_note: str = "",
           quality: tuple[int, str] = (0, ""), asked_mode: str = "auto",
           measured: Measurement | None = None) -> tuple[float, list[str]]:
    speed, efficiency = PRIORS[target.device_class]
    if target.device_id.startswith("dml:") and target.device_class == "gpu-integrated" and target.vendor == "Intel":
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
    if target.kind == "cpu":
        intel = profile.cpu.vendor == "GenuineIntel"
        if (artifact.engine == "openvino-genai") == intel:
            score += 1.0
            if measured is None:
                reasons.append("OpenVINO INT4 is the tuned path on an Intel CPU" if intel
                               else "ONNX Runtime GenAI INT4 is Microsoft's CPU build for non-Intel CPUs")
    if artifact.engine == "npu-acceleration-library":
        score -= 15.0
        reasons.append("Intel NPU Acceleration Library is archived upstream: ranked after OpenVINO GenAI's NPU path")
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
        reasons.append(f"downloads {_gb(artifact.download_bytes)} from {artifact.repo_id}")
    if window < artifact.context_length:
        # a shorter window keeps fewer turns of the chat: each halving costs WINDOW_POINTS
        score -= WINDOW_POINTS * math.log2(artifact.context_length / window)
        reasons.append(window_note)
    if target.pool_bytes:
        used = weights_bytes(artifact) + artifact.kv_bytes_per_token * window
        reasons.append(f"needs {_gb(used)} of {target.pool_name}, {_gb(target.pool_bytes)} available")
    return score, reasons


def _rate(tokens_per_s: float) -> str:
    return f"{tokens_per_s:.0f}" if tokens_per_s >= 10 else f"{tokens_per_s:.1f}"


def _same_choice(c: Candidate, mode: str) -> tuple:
    """Candidates a measurement may reorder among themselves: the builds, engines and devices of one model
    (the estimate chose the model: quality, size, the embedded fallback); with efficiency first, on one
    class of device too (a measured speed says nothing of power)."""
    art = c.artifact
    key = (art.family, art.quality_tier, art.embedded, art.on_request)
    return key + ((c.device_kind, c.pool_name),) if mode == "efficient" else key


def follow_measurements(candidates: list[Candidate], measured: Measured, mode: str) -> list[Candidate]:
    """Measured beats estimated: within each group of `_same_choice`, the measured candidates take the places
    the estimate gave them, fastest first (each takes its place's score, so the list stays in score order);
    unmeasured ones keep their places. Pure."""
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(candidates):
        if measured.get(c.artifact, c.device_id) is not None:
            groups.setdefault(_same_choice(c, mode), []).append(i)
    out = list(candidates)
    for places in groups.values():
        if len(places) < 2:
            continue
        speed = {i: measured.get(candidates[i].artifact, candidates[i].device_id).tokens_per_s for i in places}
        fastest_first = sorted(places, key=lambda i: (-speed[i], i))
        for place, i in zip(places, fastest_first, strict=True):
            c = candidates[i]
            note = (f"ranked by measured speed among the {len(places)} measured builds of this model here"
                    + ("" if place == i else f" (the estimate put it {'higher' if i < place else 'lower'})"))
            out[place] = replace(c, score=candidates[place].score, reasons=c.reasons + (note,))
    return out


def weights_bytes(artifact: Artifact) -> int:
    """What the model needs besides its KV cache (catalog: run memory at the full window minus its KV cache)."""
    return artifact.run_memory_bytes - artifact.kv_bytes_per_token * artifact.context_length


def required_bytes(artifact: Artifact, window: int | None = None) -> int:
    """Weights plus the KV cache of `window` tokens (default: the artifact's full window), plus headroom."""
    need = weights_bytes(artifact) + artifact.kv_bytes_per_token * (window or artifact.context_length)
    return need + need * HEADROOM_PERCENT // 100


def slots_that_fit(candidate: Candidate, wanted: int) -> tuple[int, str]:
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
                   f"{_tokens(window)}-token KV cache of {_gb(per_slot)}, and {wanted} need {_gb(need(wanted))} of "
                   f"{candidate.pool_name or 'memory'} with the weights, {_gb(candidate.pool_bytes)} available")


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


def _tokens(n: int) -> str:
    return f"{n // 1024}K" if n % 1024 == 0 else str(n)


def _fit(artifact: Artifact, t: _Target, profile: MachineProfile) -> tuple[int, str]:
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
            return w, (f"runs with a {_tokens(w)}-token window on this PC ({_tokens(full)} needs {_gb(need)} of "
                       f"{t.pool_name} with headroom, {_gb(t.pool_bytes)} available): the chat keeps fewer turns")
    msg = f"needs {_gb(need)} of {t.pool_name} (with headroom), {_gb(t.pool_bytes)} available on {t.name}"
    smallest = windows(artifact)[-1]
    least = required_bytes(artifact, smallest)
    if smallest != full:
        msg += f"; even a {_tokens(smallest)}-token window needs {_gb(least)}"
    if t.pool_name.startswith("RAM") and least <= profile.memory.total_bytes * 0.85:
        msg += f" ({_gb(profile.memory.total_bytes)} in all: closing other apps may free enough)"
    return 0, msg


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
            blockers = [r for r in (_engine_reason(artifact, kind, profile),
                                    _availability_reason(artifact, avail)) if r]
            targets, why = _targets(artifact, kind, profile)
            fitting, short = [], []
            for t in targets:
                window, note = _fit(artifact, t, profile)
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
