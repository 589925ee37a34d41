"""Conversions the user ran (`--convert`) live in the app's cache and join the catalog as local artifacts."""

from __future__ import annotations

import re
from pathlib import Path

from .catalog import Artifact
from .convert import TARGETS, convert
from .errors import AppError, ArtifactIncomplete
from .formats import detect
from .settings import Settings

FAMILIES = (("phi-3.5-mini", "phi-3.5-mini"), ("phi-3-mini-128k", "phi-3-mini-128k"),
            ("phi-3-mini-4k", "phi-3-mini-4k"), ("phi-3-medium-4k", "phi-3-medium-4k"))


def folder_for(source: str, target: str, settings: Settings) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(source).name if Path(source).exists() else source).strip("-")
    return settings.home / "converted" / f"{slug}-{target}"


def _family(name: str) -> str:
    low = name.lower()
    return next((fam for needle, fam in FAMILIES if needle in low), "local")


def artifacts(settings: Settings, problems: list[str] | None = None) -> tuple[Artifact, ...]:
    """Every complete conversion in the cache, as a catalog entry the policy can rank. A damaged
    folder is skipped; what is wrong with it goes to `problems` (one line each)."""
    base = settings.home / "converted"
    found = []
    try:
        folders = sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    except OSError as err:
        folders = []
        if problems is not None:
            problems.append(f"the converted models in {base} cannot be read ({err.strerror or err}); skipped")
    for folder in folders:
        try:
            found.extend(_one(folder))
        except (AppError, OSError, UnicodeDecodeError) as err:
            if problems is not None:
                problems.append(f"the converted model {folder} is damaged and was skipped ({err}); delete the "
                                "folder, or convert it again with --convert")
    return tuple(found)


def _one(folder: Path) -> list[Artifact]:
    marker = folder / ".complete"
    if not marker.is_file():
        return []  # half-built: never offered
    source, target = (marker.read_text().splitlines() + ["", ""])[:2]
    if target not in TARGETS:
        raise ArtifactIncomplete(f"its .complete marker names an unknown target {target!r}")
    local = detect(folder)
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    t = TARGETS[target]
    return [Artifact(
        id=f"converted:{folder.name}", name=f"{Path(source).name} ({t.note})", family=_family(source),
        engine=local.engine, devices=t.devices, precision="fp16" if "fp16" in target else "int4",
        quantization=t.note, format=t.format, source="local", download_bytes=0,
        run_memory_bytes=int(size * 1.3), context_length=local.context_length, license="", path=str(folder),
        notes=f"converted from {source} with --to {target}",
    )]


def run(source: str, target: str, settings: Settings, log=print) -> Path:
    return convert(source, target, folder_for(source, target, settings), log=log)
