"""From a machine profile to a loaded engine: rank, fetch, load, and fall back when a step fails."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from capabilities import MachineProfile

from . import store
from .catalog import Artifact
from .engines import Engine, EngineSpec, load
from .errors import AppError, NoUsableArtifact
from .formats import detect
from .policy import Availability, Candidate, Preference, Ranking, rank
from .settings import Settings

StepLog = Callable[[str, float, str], None]  # (step, seconds, detail)

HOW_TO_GET_PHI3 = (
    "To run Phi-3, start the app once with internet access (it downloads the best build for this PC "
    "into the Hugging Face cache), or point it at a model you already have: "
    "`python launch.py --model PATH` with an OpenVINO IR folder, an ONNX Runtime GenAI folder or a GGUF file."
)


@dataclass
class Loaded:
    engine: Engine
    candidate: Candidate
    ranking: Ranking
    notices: list[str] = field(default_factory=list)

    @property
    def artifact(self) -> Artifact:
        return self.candidate.artifact


def local_artifact(path: str) -> Artifact:
    """A model folder or GGUF file given with --model PATH, as a catalog entry the policy can rank."""
    found = detect(path)
    devices = {"openvino-genai": ("cpu", "gpu", "npu"), "onnxruntime-genai": ("cpu", "dml"),
               "npu-acceleration-library": ("npu",)}[found.engine]
    size = sum(f.stat().st_size for f in ([found.path] if found.path.is_file() else found.path.rglob("*"))
               if f.is_file())
    return Artifact(
        id=f"local:{found.path.name}", name=found.path.name, family="local", engine=found.engine,
        devices=devices, precision="", quantization="", format=found.format, source="local",
        download_bytes=0, run_memory_bytes=int(size * 1.3), context_length=found.context_length, license="",
        path=str(found.path),
    )


def availability(catalog: tuple[Artifact, ...], settings: Settings,
                 reach: tuple[bool, str] | None = None) -> Availability:
    """What is cached (read from disk every time) and whether the hub answers (`reach`, when known)."""
    cached = frozenset(a.id for a in catalog if store.is_available_offline(a, settings))
    reachable, why = reach or store.hub_reachable(settings)
    return Availability(cached=cached, hub_reachable=reachable, hub_reason=why, offline=settings.offline)


def spec_for(candidate: Candidate, path: Path, settings: Settings) -> EngineSpec:
    art = candidate.artifact
    return EngineSpec(
        path=str(path), engine=art.engine, device=candidate.device_id, label=art.name,
        precision=art.precision, context_length=art.context_length,
        cache_dir=str(settings.compile_cache_dir / art.id.replace(":", "_")),
        # the embedded GGUF lives in the app's cache: keep OpenVINO's IR of it there (loads ~2x faster)
        options={"gguf_keep_ir": art.embedded},
    )


def start(profile: MachineProfile, catalog: tuple[Artifact, ...], settings: Settings, pref: Preference,
          log: StepLog = lambda *_: None, loader: Callable[[EngineSpec], Engine] = load,
          progress: store.ProgressCallback | None = None) -> Loaded:
    t = time.perf_counter()
    avail = availability(catalog, settings)
    ranking = rank(profile, catalog, pref, avail)
    if not ranking.candidates:
        reasons = "; ".join(f"{r.artifact_id} ({r.device_kind}): {', '.join(r.reasons)}" for r in ranking.rejected)
        raise NoUsableArtifact(f"nothing in the catalog can run here with these choices. {reasons}")
    first = ranking.candidates[0]
    log("pick", time.perf_counter() - t, f"{first.artifact.name} on {first.device_name}")
    notices: list[str] = []
    failed_devices: set[tuple[str, str]] = set()  # (engine, device) that could not load: skip their siblings
    hub_down = False  # a failed download: do not start another one
    for candidate in ranking.candidates:
        art = candidate.artifact
        if (art.engine, candidate.device_id) in failed_devices:
            continue
        if hub_down and art.source == "hub" and art.id not in avail.cached:
            continue
        t = time.perf_counter()
        try:
            path = store.fetch(art, settings, progress)
        except AppError as err:
            hub_down = hub_down or art.source == "hub"
            notices.append(f"{candidate.label} could not be fetched: {err}")
            log("fallback", time.perf_counter() - t, f"{candidate.label}: {err}; trying the next choice")
            continue
        log("fetch", time.perf_counter() - t, str(path))
        t = time.perf_counter()
        try:
            engine = loader(spec_for(candidate, path, settings))
        except AppError as err:
            failed_devices.add((art.engine, candidate.device_id))
            notices.append(f"{candidate.label} could not start: {err}")
            log("fallback", time.perf_counter() - t, f"{candidate.label} failed: {err}; trying the next choice")
            continue
        log("load", time.perf_counter() - t, f"{engine.name} on {candidate.device_id}")
        if candidate is not first:
            notices.append(f"Running {candidate.label} instead of the first choice ({first.label}).")
        if candidate.artifact.embedded and not pref.model:
            notices.append(_embedded_notice(avail, settings))
        return Loaded(engine, candidate, ranking, notices)
    raise NoUsableArtifact("no candidate could be loaded: " + " | ".join(notices))


def _embedded_notice(avail: Availability, settings: Settings) -> str:
    if settings.offline:
        why = "the app is offline and no Phi-3 model is cached"
    elif not avail.hub_reachable:
        why = f"no Phi-3 model is cached and the Hugging Face Hub cannot be reached ({avail.hub_reason})"
    else:
        why = "no Phi-3 model could be downloaded or loaded"
    return (f"This is the small embedded model SmolLM2-135M, not Phi-3: {why}. Its answers are short and "
            f"often wrong. {HOW_TO_GET_PHI3}")
