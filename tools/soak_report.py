"""The soak's figures (tools/soak.py): one result per request and the report they add up to."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

MAX_RSS_GROWTH_PCT = 5.0  # the soak fails when the server's RSS grew this much from warm-up to the end


@dataclass
class Result:
    client: int
    kind: str  # "stream" | "plain" | "cancel"
    status: int = 0  # HTTP status of the last attempt; 0: no answer (connection error, timeout)
    refused: int = 0  # 429 queue_full answers before this one was served
    error: str = ""
    complete: bool = False
    finish: str | None = None
    text: str = ""
    ttft_s: float | None = None  # streams: to the first content delta
    total_s: float | None = None
    expected: str = ""  # the capital the answer should name, when the question asked for one
    tokens: int = 0  # prompt + completion tokens, from the usage the server sent



@dataclass
class SoakReport:
    url: str
    clients: int
    seconds: float
    wall_s: float = 0.0
    requests: int = 0  # requests answered (complete, incomplete, cancelled): 429 retries not counted
    complete: int = 0
    streamed: int = 0  # of the complete ones
    cancelled: int = 0
    refused_429: int = 0
    tokens: int = 0  # prompt + completion tokens of the complete replies
    errors: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    capitals_asked: int = 0
    capitals_right: int = 0
    ttft_p50: float | None = None
    ttft_p95: float | None = None
    total_p50: float | None = None
    total_p95: float | None = None
    fill_s: float | None = None  # --fill-kv: how long it ran, its prompt tokens, the RSS before it
    fill_tokens: int = 0
    rss_before_fill: int | None = None
    rss_start: int | None = None  # bytes, when the clients started
    warmup_s: float | None = None  # when the warm-up ended, from the start of the clients
    rss_warm: int | None = None
    rss_end: int | None = None
    rss_peak: int | None = None
    rss_timeline: list[tuple[float, int]] = field(default_factory=list)  # (seconds from the clients' start, bytes)
    notes: list[str] = field(default_factory=list)

    @property
    def rss_growth_pct(self) -> float | None:
        if not self.rss_warm or self.rss_end is None:
            return None
        return 100.0 * (self.rss_end - self.rss_warm) / self.rss_warm

    def rss_growth_per_min(self, since_s: float) -> float | None:
        """MiB a minute from the sample nearest `since_s` to the end: whether it still grew at the end."""
        later = [(t, rss) for t, rss in self.rss_timeline if t >= since_s]
        if len(later) < 2 or later[-1][0] - later[0][0] < 1:
            return None
        (t0, r0), (t1, r1) = later[0], later[-1]
        return (r1 - r0) / 2**20 / ((t1 - t0) / 60)

    @property
    def failures(self) -> list[str]:
        out = []
        if self.errors:
            out.append(f"{len(self.errors)} error(s) other than 429 queue_full")
        if self.incomplete:
            out.append(f"{len(self.incomplete)} incomplete repl(ies)")
        if not self.requests:
            out.append("no request was answered")
        growth = self.rss_growth_pct
        if growth is None:
            out.append("the server's RSS growth was not measured")
        elif growth >= MAX_RSS_GROWTH_PCT:
            out.append(f"RSS grew {growth:.1f} % (limit {MAX_RSS_GROWTH_PCT:g} %)")
        return out

    @property
    def ok(self) -> bool:
        return not self.failures

    def text(self) -> str:
        def s(x: float | None) -> str:
            return "-" if x is None else f"{x:.2f} s"

        def mb(x: int | None) -> str:
            return "-" if x is None else f"{x / 2**20:.0f} MiB"

        def rate(x: float | None) -> str:
            return "-" if x is None else f"{x:+.1f} MiB/min"

        growth = self.rss_growth_pct
        lines = [f"soak: {self.clients} clients x {self.seconds:g} s against {self.url} (wall {self.wall_s:.0f} s)"]
        if self.fill_s is not None:
            lines.append(f"  KV fill    {self.fill_s:.0f} s, {self.fill_tokens} prompt tokens: RSS "
                         f"{mb(self.rss_before_fill)} -> {mb(self.rss_start)} before the clients started")
        lines += [
            f"  requests   {self.requests} answered: {self.complete} complete ({self.streamed} streamed, "
            f"{self.complete - self.streamed} not; {self.tokens} tokens), {self.cancelled} cancelled by the "
            f"client; {self.refused_429} refused 429 queue_full (retried); {len(self.errors)} errors",
            f"  replies    every non-cancelled reply complete: {'yes' if not self.incomplete else 'NO'} "
            f"({len(self.incomplete)} incomplete); capital named right in {self.capitals_right} of "
            f"{self.capitals_asked} answers that asked for one",
            f"  first tok  p50 {s(self.ttft_p50)}  p95 {s(self.ttft_p95)}  (streams)",
            f"  latency    p50 {s(self.total_p50)}  p95 {s(self.total_p95)}  (complete replies, from send to end)",
            f"  server RSS {mb(self.rss_start)} at the start, {mb(self.rss_warm)} after warm-up (at "
            f"{s(self.warmup_s)}), {mb(self.rss_end)} at the end: "
            f"{'-' if growth is None else f'{growth:+.1f} %'} (limit +{MAX_RSS_GROWTH_PCT:g} %); peak "
            f"{mb(self.rss_peak)}; {rate(self.rss_growth_per_min(self.warmup_s or 0))} after warm-up, "
            f"{rate(self.rss_growth_per_min(self.wall_s * 0.75))} in the last quarter",
        ]
        lines += [f"  error      {e}" for e in self.errors[:10]]
        lines += [f"  incomplete {e}" for e in self.incomplete[:10]]
        lines += [f"  note       {n}" for n in self.notes]
        lines.append("  result     " + ("PASS" if self.ok else "FAIL: " + "; ".join(self.failures)))
        return "\n".join(lines)



def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of `values`; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]



def tally(report: SoakReport, results: list[Result]) -> None:
    for r in results:
        report.refused_429 += r.refused
        if r.error:
            report.errors.append(r.error)
            continue
        if r.status == 429:  # refused until the time was up: never answered
            continue
        report.requests += 1
        if r.kind == "cancel":
            report.cancelled += 1
            continue
        if not r.complete:
            report.incomplete.append(f"client {r.client} {r.kind}: finish_reason {r.finish!r}, "
                                     f"{len(r.text)} characters: {r.text[:80]!r}")
            continue
        report.complete += 1
        report.tokens += r.tokens
        report.streamed += r.kind == "stream"
        if r.expected:
            report.capitals_asked += 1
            report.capitals_right += r.expected.lower() in r.text.lower()
    done = [r for r in results if r.complete and not r.error]
    ttft = [r.ttft_s for r in done if r.ttft_s is not None]
    total = [r.total_s for r in done if r.total_s is not None]
    report.ttft_p50, report.ttft_p95 = percentile(ttft, 50), percentile(ttft, 95)
    report.total_p50, report.total_p95 = percentile(total, 50), percentile(total, 95)
