"""From a machine profile to a loaded engine: rank, fetch, load, and fall back when a step fails."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from capabilities import MachineProfile

from . import store
from .catalog import Artifact
from .engines import Engine, EngineSpec, load, registry
from .errors import AppError, HubUnreachable, NotEnoughDisk, NoUsableArtifact
from .formats import detect
from .policy import Availability, Candidate, Measured, Preference, Ranking, rank, slots_that_fit
from .settings import Settings

StepLog = Callable[[str, float, str], None]  # (step, seconds, detail)

HOW_TO_GET_PHI3 = (
    "To run Phi-3, start the app once with internet access (it downloads the best build for this PC "
    "into the Hugging Face cache), or point it at a model you already have: "
    "`python launch.py --model PATH` with an OpenVINO IR folder, an ONNX Runtime GenAI folder or a GGUF file."
)


@dataclass(frozen=True)
class Running:
    """What runs, as the page and the console say it: typed, so no code parses the sentence back."""

    model: str  # the artifact's name
    device_name: str  # "CPU (AMD EPYC 7B13)"
    device_id: str  # what the engine was given: "CPU", "GPU.0", "NPU", "dml:0"
    engine: str  # the engine's display name

    def text(self) -> str:
        return f"{self.model} on {self.device_name} with {self.engine}"


@dataclass
class Loaded:
    engine: Engine
    candidate: Candidate
    ranking: Ranking
    notices: list[str] = field(default_factory=list)

    @property
    def artifact(self) -> Artifact:
        return self.candidate.artifact

    def summary(self) -> Running:
        c = self.candidate
        return Running(c.artifact.name, c.device_name, c.device_id, self.engine.name)


def local_artifact(path: str) -> Artifact:
    """A model folder or GGUF file given with --model PATH, as a catalog entry the policy can rank."""
    found = detect(path)
    devices = registry.get(found.engine).devices
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


def _writable_cache(folder: Path) -> Path | None:
    """The compiled-model cache is an optimisation: a folder that cannot be written means no cache."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError:
        return None
    return folder


def spec_for(candidate: Candidate, path: Path, settings: Settings, notices: list[str] | None = None,
             progress: store.ProgressCallback | None = None, hub_down: str = "") -> EngineSpec:
    art = candidate.artifact
    folder = settings.compile_cache_dir / art.id.replace(":", "_")
    cache = _writable_cache(folder)
    if cache is None and notices is not None:
        notices.append(f"The compiled-model cache {folder} cannot be written (read-only or full disk): the model "
                       "is compiled afresh at every start. Set PHI3PC_HOME to a writable folder to keep it.")
    wanted = parallel_for(candidate, settings)
    parallel, why = slots_that_fit(candidate, wanted)  # every slot keeps a whole window of KV cache
    if why and notices is not None:
        notices.append(f"{art.name}: {why}.")
    options = {"gguf_keep_ir": art.embedded and cache is not None}
    options.update(assisted_options(candidate, settings, notices, path, parallel, progress, hub_down))
    return EngineSpec(
        path=str(path), engine=art.engine, device=candidate.device_id, device_kind=candidate.device_kind,
        parallel=parallel, label=art.name,
        precision=art.precision, context_length=candidate.context_length,
        cache_dir=str(cache) if cache else None,
        # the embedded GGUF lives in the app's cache: keep OpenVINO's IR of it there (loads ~2x faster)
        options=options,
    )


def draft_label(draft: Artifact) -> str:
    """The draft's short name, as the figures line and start-up show it: "Phi-3-mini-FastDraft-50M"."""
    return draft.name.split(",", 1)[0]


def assisted_options(candidate: Candidate, settings: Settings, notices: list[str] | None = None,
                     path: Path | None = None, parallel: int = 1, progress: store.ProgressCallback | None = None,
                     hub_down: str = "") -> dict:
    """The draft model (--draft: `auto` by default) and --prompt-lookup, for OpenVINO GenAI on a CPU or GPU (the
    engine's own limits, see models/engines/assisted.py). `auto`: the catalog's paired draft, cached or fetched
    through the store, when it costs neither JSON answers nor memory the model needs; `always`: the paired draft even
    when JSON answers must then be refused; a folder: that draft, forced. A draft that cannot be had is said in one
    line and left out: the model runs without it."""
    art = candidate.artifact
    say = notices.append if notices is not None else (lambda _line: None)
    lookup = {"prompt_lookup": True} if settings.prompt_lookup else {}
    if candidate.device_kind not in registry.get(art.engine).assisted:
        return {}
    if not settings.draft:  # --no-draft
        return lookup
    if settings.draft not in ("auto", "always"):  # a folder: the user's draft, forced
        why = _draft_does_not_fit(candidate, Path(settings.draft), Path(settings.draft).name, parallel)
        if why:
            say(why)
            return lookup
        return {"draft_path": settings.draft, "draft_label": Path(settings.draft).name}
    from .catalog import by_id, load_drafts
    from .engines.assisted import json_problem

    draft = by_id(load_drafts(), art.draft) if art.draft else None
    if draft is None:
        if settings.draft == "always":
            say(f"--draft always: no draft model is paired with {art.name} in the catalog.")
        return lookup
    label = draft_label(draft)
    why = json_problem(path) if settings.draft == "auto" and path is not None else ""
    if why:  # known from the model alone: the draft is not even fetched
        say(f"Speculative decoding with {label} is off: {why}. JSON answers come first; `--draft always` uses the "
            "draft anyway (and refuses JSON answers).")
        return lookup
    if hub_down and not store.is_available_offline(draft, settings):
        say(f"The draft model {label} is not on this PC and cannot be downloaded now: {hub_down}. The model runs "
            "without speculative decoding.")
        return lookup
    try:
        folder = store.fetch(draft, settings, progress)
    except AppError as err:
        say(f"The draft model {label} could not be fetched ({err}): the model runs without speculative decoding.")
        return lookup
    why = _draft_does_not_fit(candidate, folder, label, parallel)
    if why:
        say(why)
        return lookup
    return {"draft_path": str(folder), "draft_label": label, "draft_optional": settings.draft == "auto"}


def _draft_does_not_fit(candidate: Candidate, draft: Path, label: str, parallel: int) -> str:
    """Does the draft fit beside the model in the memory the candidate was checked against? Its weights (the IR's
    size on disk) and its share of the KV cache (per token, read from its IR, FP16 as the catalog counts; every
    answer at once keeps a whole window of it), with the policy's headroom. "" when it fits or memory is unknown."""
    from .policy import HEADROOM_PERCENT, weights_bytes

    if not candidate.pool_bytes:
        return ""
    art, window = candidate.artifact, candidate.context_length
    try:
        from .engines.kv_cache import kv_bytes_per_token

        weights = (draft / "openvino_model.bin").stat().st_size
        kv = kv_bytes_per_token(draft / "openvino_model.xml", 2)
    except Exception:  # noqa: BLE001 - not an IR the app can read: the engine says so when it loads it
        return ""
    need = weights_bytes(art) + (art.kv_bytes_per_token + kv) * window * parallel + weights
    need += need * HEADROOM_PERCENT // 100
    if need <= candidate.pool_bytes:
        return ""
    together = f", {parallel} answers at once" if parallel > 1 else ""
    return (f"The draft model {label} is left out: with it {art.name} needs {need / 1e9:.1f} GB of "
            f"{candidate.pool_name or 'memory'} ({window}-token window{together}), "
            f"{candidate.pool_bytes / 1e9:.1f} GB available. The model runs without speculative decoding.")


DEFAULT_PARALLEL = 4  # answers at once on the CPU or a GPU (continuous batching); the NPU runs one


def parallel_for(candidate: Candidate, settings: Settings) -> int:
    """How many answers the engine runs together: only an engine that batches on this device kind (the registry:
    OpenVINO GenAI on a CPU or GPU) runs more than one; the NPU (static shapes) and the others answer one at a
    time. The one place this is decided: `load` reads the spec's `parallel`."""
    if not registry.get(candidate.artifact.engine).batches_on(candidate.device_kind):
        return 1
    return max(1, settings.parallel if settings.parallel is not None else DEFAULT_PARALLEL)


@dataclass
class _Attempts:
    """What failed so far, and what each failure rules out for the candidates after it."""

    devices: set[tuple[str, str]] = field(default_factory=set)  # (engine, device): its driver is missing
    artifacts: set[str] = field(default_factory=set)  # artifact ids that failed on their own account
    hub_down: str = ""  # why the hub cannot be reached, once a download found out
    disk: str = ""  # the first download refused for disk space
    load: str = ""  # the first load failure

    def skip(self, candidate: Candidate, cached: frozenset[str]) -> bool:
        art = candidate.artifact
        if (art.engine, candidate.device_id) in self.devices or art.id in self.artifacts:
            return True
        return bool(self.hub_down) and art.source == "hub" and art.id not in cached


def start(profile: MachineProfile, catalog: tuple[Artifact, ...], settings: Settings, pref: Preference,
          log: StepLog = lambda *_: None, loader: Callable[[EngineSpec], Engine] = load,
          progress: store.ProgressCallback | None = None,
          before_load: Callable[[Candidate], str | None] | None = None,
          measured: Measured | None = None) -> Loaded:
    """Rank (with the speeds `--bench` measured on this machine, when there are any), then fetch and load the
    first candidate that works. A failure skips only what shares its cause: a missing driver skips that
    device, a broken or oversized artifact skips that artifact, and
    only a network failure stops further hub downloads. `before_load` runs right before an engine loads
    (the page's switch frees the running model there when both do not fit) and may return a notice."""
    t = time.perf_counter()
    avail = availability(catalog, settings)
    ranking = rank(profile, catalog, pref, avail, measured or Measured())
    if not ranking.candidates:
        reasons = "; ".join(f"{r.artifact_id} ({r.device_kind}): {', '.join(r.reasons)}" for r in ranking.rejected)
        raise NoUsableArtifact(f"nothing in the catalog can run here with these choices. {reasons}")
    first = ranking.candidates[0]
    log("pick", time.perf_counter() - t, f"{first.artifact.name} on {first.device_name}")
    notices: list[str] = []
    failed = _Attempts()
    for candidate in ranking.candidates:
        if failed.skip(candidate, avail.cached):
            continue
        art = candidate.artifact
        t = time.perf_counter()
        try:
            path = store.fetch(art, settings, progress)
        except AppError as err:
            if isinstance(err, HubUnreachable):
                failed.hub_down = failed.hub_down or str(err)
            else:
                failed.artifacts.add(art.id)
                if isinstance(err, NotEnoughDisk):
                    failed.disk = failed.disk or str(err)
            notices.append(f"{candidate.label} could not be fetched: {err}")
            log("fallback", time.perf_counter() - t, f"{candidate.label}: {err}; trying the next choice")
            continue
        log("fetch", time.perf_counter() - t, str(path))
        if before_load is not None:
            said = before_load(candidate)
            if said:
                notices.append(said)
        t = time.perf_counter()
        spec = spec_for(candidate, path, settings, notices, progress,
                        failed.hub_down or ("" if avail.hub_reachable else avail.hub_reason))
        if spec.options.get("draft_path") and settings.draft in ("auto", "always"):  # the catalog's draft, fetched
            log("draft", time.perf_counter() - t, spec.options["draft_path"])
        t = time.perf_counter()
        try:
            engine = loader(spec)
        except AppError as err:
            if getattr(err, "scope", "artifact") == "device":
                failed.devices.add((art.engine, candidate.device_id))
            else:
                failed.artifacts.add(art.id)
            failed.load = failed.load or f"{candidate.label}: {err}"
            notices.append(f"{candidate.label} could not start: {err}")
            log("fallback", time.perf_counter() - t, f"{candidate.label} failed: {err}; trying the next choice")
            continue
        together = f", {engine.max_parallel} answers at once" if engine.max_parallel > 1 else ""
        assist = getattr(engine, "assist", None)
        if assist is not None:  # the draft (or prompt lookup) in use, said where the load is
            together += f", {assist.what}"
        log("load", time.perf_counter() - t, f"{engine.name} on {candidate.device_id}{together}")
        notices.extend(engine.notices)
        if candidate is not first:
            notices.append(f"Running {candidate.label} instead of the first choice ({first.label}).")
        if candidate.context_length < art.context_length:
            notices.append(f"{art.name} runs with a {candidate.context_length}-token window on this PC "
                           f"(its full {art.context_length}-token window does not fit in memory).")
        if art.embedded and not pref.model:
            notices.append(_embedded_notice(avail, settings, failed))
        return Loaded(engine, candidate, ranking, notices)
    raise NoUsableArtifact("no candidate could be loaded: " + " | ".join(notices))


def _embedded_notice(avail: Availability, settings: Settings, failed: _Attempts) -> str:
    how = HOW_TO_GET_PHI3
    if settings.offline:
        why = "the app is offline and no Phi-3 model is cached"
    elif not avail.hub_reachable:
        why = f"no Phi-3 model is cached and the Hugging Face Hub cannot be reached ({avail.hub_reason})"
    elif failed.hub_down:
        why = f"no Phi-3 model is cached and the download failed: {failed.hub_down}"
    elif failed.disk:
        why = f"there is not enough disk space for a Phi-3 download ({failed.disk})"
        how = ("Free some disk space (or point HF_HOME at a bigger disk) and start again, or run a model you "
               "already have: `python launch.py --model PATH`.")
    elif failed.load:
        why = f"no Phi-3 model could be loaded (first failure: {failed.load})"
        how = "Run `python launch.py --explain` to see the other choices, or try `--device cpu`."
    else:
        why = "no Phi-3 model could be downloaded or loaded"
    return (f"This is the small embedded model SmolLM2-135M, not Phi-3: {why}. Its answers are short and "
            f"often wrong. {how}")
