"""Figures from timestamps: one timed generation (`Sample`), and the summary of several. Pure."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    """One generation as its caller saw it: when it asked, when each piece of text arrived, how many tokens
    the engine says it generated (a piece is usually one token; a word split over tokens arrives as one)."""

    ttft_s: float  # asked -> first piece
    gaps_s: tuple[float, ...]  # between consecutive pieces: the per-token latency
    tokens: int
    pieces: int
    total_s: float  # asked -> last piece

    @property
    def decode_tokens_per_s(self) -> float:
        """Tokens after the first over the time after the first piece (what the engines report as decode)."""
        decode = self.total_s - self.ttft_s
        return (self.tokens - 1) / decode if self.tokens > 1 and decode > 0 else 0.0


def sample(asked: float, stamps: Sequence[float], tokens: int | None = None) -> Sample:
    """`asked` and `stamps` from time.perf_counter(); `tokens` defaults to the number of pieces."""
    if not stamps:
        return Sample(0.0, (), tokens or 0, 0, 0.0)
    gaps = tuple(b - a for a, b in zip(stamps, stamps[1:], strict=False))
    return Sample(stamps[0] - asked, gaps, len(stamps) if tokens is None else tokens, len(stamps),
                  stamps[-1] - asked)


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0-100), linear between the closest ranks (numpy's default)."""
    data = sorted(values)
    if not data:
        return math.nan
    pos = (len(data) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def median(values: Iterable[float]) -> float:
    data = list(values)
    return statistics.median(data) if data else math.nan


def summary(samples: Sequence[Sample]) -> dict:
    """Medians over the runs; per-token latency percentiles over every gap of every run."""
    gaps = [g for s in samples for g in s.gaps_s]
    return {
        "runs": len(samples),
        "ttft_ms": median(s.ttft_s for s in samples) * 1000,
        "decode_tokens_per_s": median(s.decode_tokens_per_s for s in samples),
        "tokens": int(median(s.tokens for s in samples)) if samples else 0,
        "pieces_per_token": (sum(s.pieces for s in samples) / sum(s.tokens for s in samples)
                             if samples and sum(s.tokens for s in samples) else math.nan),
        "token_latency_ms": {f"p{q}": percentile(gaps, q) * 1000 for q in (50, 90, 99)},
    }


def ratio(a: float, b: float) -> float:
    return a / b if b and math.isfinite(a) and math.isfinite(b) else math.nan
