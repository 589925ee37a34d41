"""RSS of the server against API requests answered (a script): does the memory grow per request, or only
while the batching engine's KV-cache pool becomes resident?

    .venv/bin/python -m tools.rss_per_request [--requests 4000] [--every 100] [--fill-kv] [--out DIR]

It starts the app (`--offline`, the embedded model, the default `--parallel`), sends short chat requests one
after another (two-token answers, seven different questions), and samples the server's RSS every `--every`
requests. With `--fill-kv` the pool is made resident first (tools/soak.py's long random prompts), so what
remains is everything else. Writes rss.csv, and rss.png when matplotlib is there, and prints the growth per
request over the first and the last quarter. The app is stopped at the end; every request has a timeout.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import httpx  # noqa: E402

from tools.live_app import start_app  # noqa: E402
from tools.server_memory import fill_kv, rss_of


def sample(url: str, pid: int, requests: int, every: int) -> list[tuple[int, float, float]]:
    """(requests answered, seconds, RSS in MB) every `every` requests."""
    rows, started = [(0, 0.0, rss_of(pid) / 1e6)], time.monotonic()
    with httpx.Client(base_url=url, timeout=60) as http:
        for i in range(1, requests + 1):
            r = http.post("/v1/chat/completions", json={
                "messages": [{"role": "user", "content": f"Say hello number {i % 7}."}], "max_tokens": 2})
            r.raise_for_status()
            if i % every == 0:
                rows.append((i, time.monotonic() - started, rss_of(pid) / 1e6))
    return rows


def slope(rows: list[tuple[int, float, float]]) -> float:
    """MB per request between the first and the last row."""
    return (rows[-1][2] - rows[0][2]) / max(1, rows[-1][0] - rows[0][0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--fill-kv", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--home", type=Path, default=None, help="the app's home (PHI3PC_HOME)")
    args = parser.parse_args()
    app = start_app("--offline", "--model", "smollm2-135m-embedded", home=args.home, timeout=300)
    try:
        pid = app.proc.pid
        if args.fill_kv:
            seconds, tokens, before, after, errors = fill_kv(app.url, pid)
            print(f"KV pool filled: {tokens} prompt tokens in {seconds:.0f} s, RSS {before / 1e6:.0f} -> "
                  f"{after / 1e6:.0f} MB" + (f", errors: {errors}" if errors else ""))
        rows = sample(app.url, pid, args.requests, args.every)
    finally:
        app.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "rss.csv", "w", newline="") as f:
        csv.writer(f).writerows([("requests", "seconds", "rss_mb")] + rows)
    q = max(2, len(rows) // 4)
    print(f"RSS {rows[0][2]:.0f} -> {rows[-1][2]:.0f} MB over {rows[-1][0]} requests ({rows[-1][1]:.0f} s); "
          f"first quarter {slope(rows[:q]) * 1000:.0f} kB per request, last quarter {slope(rows[-q:]) * 1000:.0f}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return 0
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot([r[0] for r in rows], [r[2] for r in rows], marker=".")
    ax.set_xlabel("API requests answered")
    ax.set_ylabel("server RSS (MB)")
    ax.set_title("RSS per request" + (" after the KV pool is resident" if args.fill_kv else ""))
    fig.tight_layout()
    fig.savefig(args.out / "rss.png", dpi=100)
    return 0


if __name__ == "__main__":
    sys.exit(main())
