"""The benchmark (`python launch.py --bench`): every engine and device this PC has, side by side with
llama.cpp, against this machine's memory bandwidth, raw engine against the app's own ways in; the figures
saved per machine so that the policy ranks by what was measured here.

One job per module:
    targets.py   what to measure, as the app would load it
    stats.py     figures from timestamps (pure)
    paths.py     the same generation raw, through the engine seam, the page's stream and the API's stream
    peer.py      llama.cpp on the same GGUF (optional: requirements-bench.txt)
    memory.py    peak resident memory; memory read bandwidth
    roofline.py  bytes read per token, and the fraction of bandwidth ÷ bytes each decode figure reaches
    chart.py     report.png (optional: matplotlib)
    table.py     the figures as text (the console, the page's Benchmark tab)
    saved.py     measurements kept per machine, read back for the policy
    run.py       the order of work
    tune.py      the tuning sweep behind the engines' settings (python -m models.bench.tune)

Nothing heavy is imported here: `--explain` reads saved figures without loading an engine.
"""

from __future__ import annotations


def bench(*args, **kwargs):
    from .run import bench as _bench

    return _bench(*args, **kwargs)


def options(**kwargs):
    from .run import Options

    return Options(**kwargs)
