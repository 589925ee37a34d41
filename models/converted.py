"""Conversions the user ran (`--convert`) live in the app's cache and join the catalog as local artifacts."""

from __future__ import annotations

import re
from pathlib import Path

from .catalog import Artifact
from .convert import TARGETS, convert
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


def artifacts(settings: Settings) -> tuple[Artifact, ...]:
    """Every complete conversion in the cache, as a catalog entry the policy can rank."""
    base = settings.home / "converted"
    found = []
    for folder in sorted(base.iterdir()) if base.is_dir() else []:
        marker = folder / ".complete"
        if not marker.is_file():
            continue  # half-built: never offered
        source, target = (marker.read_text().splitlines() + ["", ""])[:2]
        if target not in TARGETS:
            continue
        local = detect(folder)
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        t = TARGETS[target]
        found.append(Artifact(
            id=f"converted:{folder.name}", name=f"{Path(source).name} ({t.note})", family=_family(source),
            engine=local.engine, devices=t.devices, precision="fp16" if "fp16" in target else "int4",
            quantization=t.note, format=t.format, source="local", download_bytes=0,
            run_memory_bytes=int(size * 1.3), context_length=local.context_length, license="", path=str(folder),
            notes=f"converted from {source} with --to {target}",
        ))
    return tuple(found)


def run(source: str, target: str, settings: Settings, log=print) -> Path:
    return convert(source, target, folder_for(source, target, settings), log=log)
