"""The report's figures as text: the console after `--bench`, and the rows the page's Benchmark tab shows."""

from __future__ import annotations

COLUMNS = ("engine · device · model", "load cold / warm s", "first token short / long ms", "decode tok/s",
           "per token p50 / p90 / p99 ms", "peak MB", "of bandwidth limit", "vs raw tok/s (seam, page, api)",
           "first token added ms (seam, page, api)")


def _f(value, fmt: str = ".0f", none: str = "-") -> str:
    return none if value is None else format(value, fmt)


def rows(report: dict) -> list[tuple[str, ...]]:
    out = []
    for t in report["targets"]:
        name = f"{t['engine']} · {t['device']} · {t['artifact_name']}"
        if t["status"] != "ok":
            out.append((name, "failed: " + t.get("error", "?")[:160], *[""] * (len(COLUMNS) - 2)))
            continue
        lat, o = t["token_latency_ms"], t["overhead"]
        roof = t.get("roofline", {})
        out.append((
            name,
            f"{_f(t['load_s'].get('cold'), '.1f')} / {_f(t['load_s'].get('warm'), '.1f')}",
            f"{_f(t['ttft_ms']['short'])} / {_f(t['ttft_ms']['long'])}",
            _f(t["decode_tokens_per_s"], ".1f"),
            f"{_f(lat['p50'], '.1f')} / {_f(lat['p90'], '.1f')} / {_f(lat['p99'], '.1f')}",
            _f(t["peak_memory_bytes"] / 1e6 if t.get("peak_memory_bytes") else None),
            f"{roof['fraction']:.0%}" if roof.get("fraction") else "-",
            ", ".join(_f(o[w]["tokens_per_s_vs_raw"], ".2f") for w in ("seam", "page", "api")),
            ", ".join(_f(o[w]["first_token_added_ms"], "+.1f") for w in ("seam", "page", "api")),
        ))
    for p in report.get("peers", []):
        lat, vs = p["token_latency_ms"], p["app_vs_peer"]
        out.append((
            f"llama.cpp · {p['threads']} threads · {p['artifact_name']}", f"- / {_f(p['load_s']['warm'], '.1f')}",
            f"{_f(p['ttft_ms']['short'])} / {_f(p['ttft_ms']['long'])}", _f(p["decode_tokens_per_s"], ".1f"),
            f"{_f(lat['p50'], '.1f')} / {_f(lat['p90'], '.1f')} / {_f(lat['p99'], '.1f')}", "-", "-",
            f"app ÷ llama.cpp: tok/s {_f(vs['decode_tokens_per_s'], '.2f')}",
            f"first token {_f(vs['ttft_short'], '.1f')}x / {_f(vs['ttft_long'], '.1f')}x"))
    return out


def text(report: dict) -> str:
    table = [COLUMNS, *rows(report)]
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    bw = report["bandwidth"]
    s = report["settings"]
    head = (f"{report['machine']['cpu']}: memory read bandwidth {bw['bytes_per_s'] / 1e9:.1f} GB/s; "
            f"prompt ~{s['prompt_tokens']} tokens (long), {s['new_tokens']} new tokens, {s['runs']} runs, greedy")
    tail = [f"not measured: {u['key']}: {u['reason']}" for u in report.get("unusable", [])]
    tail += [f"note: {n}" for n in report.get("notes", [])]
    return "\n".join([head, "", *lines, *([""] + tail if tail else [])])


def latest(home) -> tuple[dict, object] | None:
    """The newest report under the app home's bench/ folder and its folder (for the page's Benchmark tab)."""
    import json
    from pathlib import Path

    reports = sorted(Path(home, "bench").glob("*/report.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in reports:
        try:
            return json.loads(path.read_text(encoding="utf-8")), path.parent
        except (OSError, ValueError):
            continue
    return None
