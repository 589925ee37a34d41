"""Speeds measured on this machine (`--bench`), as the policy reads them: measured beats estimated. Pure; the file
they are kept in is models/measured_file.py."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from .catalog import Artifact


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


def _same_choice(c, mode: str) -> tuple:
    """Candidates a measurement may reorder among themselves: the builds, engines and devices of one model
    (the estimate chose the model: quality, size, the embedded fallback); with efficiency first, on one
    class of device too (a measured speed says nothing of power)."""
    art = c.artifact
    key = (art.family, art.quality_tier, art.embedded, art.on_request)
    return key + ((c.device_kind, c.pool_name),) if mode == "efficient" else key


def follow_measurements(candidates: list, measured: Measured, mode: str) -> list:
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
