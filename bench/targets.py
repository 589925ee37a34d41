"""What to measure: every usable (engine, device, artifact) here, as the app would load it.

By default the cached catalog artifacts plus the embedded model; `--model ID|PATH` (repeatable) names them
instead. Each becomes the app's own EngineSpec (`startup.spec_for`: the same properties, window and
parallelism the app would use), with the compiled-model cache moved to the benchmark's own folder, so that
clearing it for the cold figures never touches the app's cache.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from capabilities import MachineProfile
from models import store
from models.catalog import Artifact
from models.engines import EngineSpec, registry
from models.errors import AppError
from models.policy import Candidate, Preference, rank
from models.settings import Settings
from models.startup import availability, local_artifact, spec_for


@dataclass(frozen=True)
class Target:
    key: str  # "<artifact id>@<device id>": unique in a report, and how a measurement is saved
    artifact: Artifact
    device_id: str
    device_name: str
    path: Path  # the file or folder the engine reads
    spec: EngineSpec  # as the app loads it, with the benchmark's own compile cache

    @property
    def engine(self) -> str:
        return self.artifact.engine

    @property
    def label(self) -> str:
        return f"{self.artifact.name} · {registry.display_name(self.engine)} · {self.device_id}"


@dataclass(frozen=True)
class Unusable:
    """Something asked for that cannot be measured, and why (it goes into the report)."""

    key: str
    reason: str


def _target(candidate: Candidate, settings: Settings, cache_root: Path) -> Target:
    art = candidate.artifact
    path = store.fetch(art, settings)
    spec = spec_for(candidate, path, settings)
    cache = cache_root / f"{art.id}@{candidate.device_id}".replace(":", "_").replace("/", "_")
    return Target(f"{art.id}@{candidate.device_id}", art, candidate.device_id, candidate.device_name, path,
                  replace(spec, cache_dir=str(cache)))


def _wanted(profile: MachineProfile, catalog: tuple[Artifact, ...], settings: Settings,
            models: list[str]) -> tuple[tuple[Artifact, ...], list[str], list[Unusable]]:
    """The catalog with the local models added, the ids to measure, and what could not even be read."""
    ids, bad = [], []
    for model in models:
        if any(a.id == model for a in catalog):
            ids.append(model)
            continue
        if not Path(model).expanduser().exists():
            bad.append(Unusable(model, "neither a catalog id (`--explain` lists them) nor an existing file or folder"))
            continue
        try:
            local = local_artifact(model)
        except AppError as err:
            bad.append(Unusable(model, str(err)))
            continue
        if any(a.id == local.id and a.path != local.path for a in catalog):
            local = replace(local, id=f"{local.id}~{len(catalog)}")  # two folders of the same name
        catalog += (local,)
        ids.append(local.id)
    return catalog, ids, bad


def select(profile: MachineProfile, catalog: tuple[Artifact, ...], settings: Settings, models: list[str],
           device: str, cache_root: Path) -> tuple[list[Target], list[Unusable], tuple[Artifact, ...]]:
    """The targets in a stable order, what was asked for but cannot run here (with the policy's reasons),
    and the catalog they come from (local models added)."""
    catalog, ids, unusable = _wanted(profile, catalog, settings, models)
    avail = availability(catalog, settings, reach=(False, "the benchmark measures what is here"))
    targets: list[Target] = []
    seen: set[str] = set()

    def add(candidates) -> None:
        for c in candidates:
            key = f"{c.artifact.id}@{c.device_id}"
            if key in seen:
                continue
            seen.add(key)
            try:
                targets.append(_target(c, settings, cache_root))
            except AppError as err:
                unusable.append(Unusable(key, str(err)))

    if ids:
        for model_id in ids:
            ranking = rank(profile, catalog, Preference(mode="fastest", device=device, model=model_id), avail)
            add(ranking.candidates)
            if not ranking.candidates:
                why = "; ".join(f"{r.device_kind}: {', '.join(r.reasons)}" for r in ranking.rejected)
                unusable.append(Unusable(model_id, f"cannot run here: {why or 'no device for it'}"))
    else:
        ranking = rank(profile, catalog, Preference(mode="fastest", device=device), avail)
        add(c for c in ranking.candidates if c.artifact.id in avail.cached or c.artifact.embedded)
    return targets, unusable, catalog


def clear_cache(target: Target) -> None:
    """Cold start: nothing compiled is left for this target (its own folder only)."""
    if target.spec.cache_dir:
        shutil.rmtree(target.spec.cache_dir, ignore_errors=True)
        Path(target.spec.cache_dir).mkdir(parents=True, exist_ok=True)


def weights_bytes(target: Target) -> int:
    """Bytes of weights the engine reads for each token: the model's weight files."""
    p = target.path
    if p.is_file():  # a GGUF (OpenVINO reads the IR it keeps beside it: about the same bytes)
        return p.stat().st_size
    files = {f for pattern in registry.get(target.engine).weight_files for f in p.glob(pattern)}
    return sum(f.stat().st_size for f in files)
