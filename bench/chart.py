"""The report as a picture (matplotlib, optional: requirements-bench.txt): per-token latency over the answer,
one line per engine and device (as the cookbook's NPU latency figures), and decode tokens/s per engine beside
llama.cpp and this machine's bandwidth ceiling."""

from __future__ import annotations

from pathlib import Path

MISSING = ("the chart was not drawn: matplotlib is not installed (`python launch.py --bench` installs "
           "requirements-bench.txt; or .venv/bin/pip install -r requirements-bench.txt)")


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _name(entry: dict) -> str:
    return f"{entry['artifact_name']}\n{entry['engine']} · {entry['device']}"


def draw(report: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [t for t in report["targets"] if t.get("status") == "ok"]
    peers = report.get("peers", [])
    fig, (lat, tps) = plt.subplots(1, 2, figsize=(14, 5.5), gridspec_kw={"width_ratios": [1.1, 1]})
    for entry in ok + peers:
        curve = entry.get("token_latency_curve_ms") or []
        if curve:
            first = entry["ttft_ms"]["short"]
            lat.plot(range(2, len(curve) + 2), curve, linewidth=1.2,
                     label=f"{_name(entry).replace(chr(10), ' · ')} (first token {first:.0f} ms)")
    lat.set_xlabel("token of the answer")
    lat.set_ylabel("latency per token, ms (median of the runs)")
    lat.set_title("Per-token latency by engine and device")
    lat.set_ylim(bottom=0)
    lat.grid(alpha=0.3)
    lat.legend(fontsize=7, loc="upper left")

    bars = ok + peers
    names = [_name(e) for e in bars]
    speeds = [e["decode_tokens_per_s"] for e in bars]
    colors = ["#4c72b0" if e in ok else "#dd8452" for e in bars]
    ys = range(len(bars))
    tps.barh(list(ys), speeds, color=colors, height=0.6)
    tps.set_ylim(len(bars) - 0.4, -0.6)
    for y, e in zip(ys, bars, strict=True):
        label = f"{e['decode_tokens_per_s']:.0f}"
        ceiling = (e.get("roofline") or {}).get("ceiling_tokens_per_s")
        if ceiling:
            tps.plot([ceiling], [y], marker="|", markersize=18, color="black")
            label += f"  ({e['roofline']['fraction']:.0%} of bandwidth ceiling)"
        tps.text(e["decode_tokens_per_s"], y, " " + label, va="center", fontsize=8)
    tps.set_yticks(list(ys))
    tps.set_yticklabels(names, fontsize=8)
    tps.set_xlabel("decode tokens/s (median)   | = bandwidth ÷ bytes read per token")
    tps.set_title("Decode speed (blue: the app's engines, orange: llama.cpp)")
    tps.grid(axis="x", alpha=0.3)
    xmax = max([s for s in speeds] + [(e.get("roofline") or {}).get("ceiling_tokens_per_s") or 0 for e in bars] + [1])
    tps.set_xlim(0, xmax * 1.45)
    s = report["settings"]
    fig.suptitle(f"{report['machine']['cpu']} · {s['new_tokens']} new tokens, greedy, {s['runs']} interleaved runs · "
                 f"{report['created'][:10]}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
