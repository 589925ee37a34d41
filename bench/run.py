"""`launch.py --bench`: load every target cold and warm, then R interleaved rounds of the same greedy
generation by every way in (paths.py) and by llama.cpp, then the report, the chart and the saved figures.

Order of work (one process, so machine noise hits every engine alike):
1. the output folder is checked first (an unwritable --out is one line, before anything is measured);
2. memory read bandwidth (memory.py);
3. per target: compile cache cleared, load (cold), close, load again (warm); peak memory alone in a child
   process; a target that cannot load is reported with the engine's words and the others go on; then
   llama.cpp on each GGUF (in a child process of its own);
4. one warm-up generation per target and way in, not counted;
5. R rounds; in each, every target runs every way in (raw, seam, page, api; the order turns each round),
   a long-prompt first token through the seam, and llama.cpp; nothing else runs meanwhile;
6. report.json, report.png, and the seam figures saved for the policy (models/measured_file.py).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import itertools
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from capabilities import MachineProfile
from models import measured_file as saved
from models.catalog import Artifact
from models.engines import Engine, Sampling, load, registry
from models.errors import AppError
from models.settings import Settings

from . import chart, paths, peer, roofline
from .memory import model_peak, read_bandwidth
from .stats import Sample, median, ratio, summary
from .targets import Target, Unusable, clear_cache, select

Log = Callable[[str, float, str], None]
SHORT_PROMPT = "Write a long story about a dragon and a knight."
LONG_TEXT = ("The lighthouse keeper climbed the spiral stairs every evening, counting the steps, checking the "
             "lamp and writing the weather into a worn notebook while ships passed far out at sea. ")
LONG_NEW_TOKENS = 8  # the long prompt measures the first token; a few more are enough
SCHEMA = 1


@dataclass(frozen=True)
class Options:
    models: tuple[str, ...] = ()
    device: str = "auto"
    prompt_tokens: int = 512
    new_tokens: int = 128
    runs: int = 3
    out: Path | None = None
    bandwidth_bytes: int = 1 << 30
    command: str = ""
    save: bool = True  # the figures go to the policy (saved per machine); --no-save: the report only


@dataclass
class _Run:
    """One target while it is measured."""

    target: Target
    engine: Engine | None = None
    error: str = ""
    load_s: dict = field(default_factory=dict)
    resident: int = 0  # what the model holds once loaded, alone in a process (memory.model_peak)
    peak: int = 0  # its peak there: loading, warming up and one generation
    memory_method: str = ""
    long_repeats: int = 1
    prompt_tokens: dict = field(default_factory=dict)
    runners: dict = field(default_factory=dict)
    closers: list = field(default_factory=list)
    samples: dict = field(default_factory=lambda: {p: [] for p in (*paths.PATHS, "long")})
    peer: object = None
    peer_samples: dict = field(default_factory=lambda: {"short": [], "long": []})
    peer_error: str = ""


def output_folder(out: Path | None, settings: Settings) -> Path:
    folder = out or settings.home / "bench" / time.strftime("%Y%m%d-%H%M%S")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise AppError(f"the report cannot be written into {folder} ({err.strerror or err}): "
                       "give --out a folder you can write") from err
    return folder


_calls = itertools.count(1)


def _short() -> list[dict]:
    """The short prompt, each call its own: a number at the start (its digits are single tokens, so every call
    has the same length) keeps a prefix cache from answering the prompt itself from an earlier run; what every
    chat shares (the template's system prompt) may still be reused, by every engine that can."""
    return [{"role": "user", "content": f"Story {next(_calls) % 10000:04d}. {SHORT_PROMPT}"}]


def _long(repeats: int) -> list[dict]:
    return [{"role": "user", "content": f"Story {next(_calls) % 10000:04d}. " + LONG_TEXT * repeats
             + "Tell the story of the keeper in your own words."}]


def _long_repeats(engine: Engine, tokens: int) -> tuple[int, int]:
    """How many repeats of LONG_TEXT make about `tokens` tokens in this engine's chat template, and the count."""
    per = max(1, engine.count_tokens(_long(2)) - engine.count_tokens(_long(1)))
    n = max(1, round((tokens - engine.count_tokens(_long(0))) / per))
    return n, engine.count_tokens(_long(n))


def _load(run: _Run, log: Log) -> None:
    t = run.target
    clear_cache(t)
    began = time.perf_counter()
    try:
        cold = load(t.spec)
        run.load_s["cold"] = time.perf_counter() - began
        cold.close()
        del cold
        log("load", run.load_s["cold"], f"{t.label}: cold (compile cache cleared)")
        began = time.perf_counter()
        run.engine = load(t.spec)
        run.load_s["warm"] = time.perf_counter() - began
        log("load", run.load_s["warm"], f"{t.label}: warm ({type(run.engine).__name__}, "
            f"{run.engine.max_parallel} at once)")
    except AppError as err:
        run.error = str(err)
        log("failed", time.perf_counter() - began, f"{t.label}: {err}")


def _prepare(run: _Run, opts: Options, log: Log) -> None:
    """Peak memory (a child process), prompts, the four ways in, and llama.cpp for a GGUF."""
    engine, t = run.engine, run.target
    began = time.perf_counter()
    try:
        got = model_peak(t.spec, opts.new_tokens)
        run.peak, run.resident, run.memory_method = got["peak_bytes"], got["resident_bytes"], got["method"]
        log("memory", time.perf_counter() - began, f"{t.label}: peak {run.peak / 1e6:.0f} MB alone in a process")
    except (RuntimeError, OSError, ValueError) as err:
        log("memory", time.perf_counter() - began, f"{t.label}: {err}")
    run.prompt_tokens["short"] = engine.count_tokens(_short())
    run.long_repeats, run.prompt_tokens["long"] = _long_repeats(engine, opts.prompt_tokens)
    raw, close_raw = paths.raw_runner(engine)
    server = paths.ApiServer(engine, t.artifact.id)
    run.runners = {"raw": raw, "seam": lambda m, s: paths.seam(engine, m, s), "page": paths.page_runner(engine),
                   "api": server.runner()}
    run.closers += [close_raw, server.close]
    if t.path.suffix.lower() == ".gguf":
        if peer.version() is None:
            run.peer_error = f"llama-cpp-python is not installed: {peer.HOW_TO_INSTALL}"
            return
        try:
            run.peer = peer.LlamaCpp(t.path, peer.threads(), t.spec.context_length)
            log("load", run.peer.load_s, f"llama.cpp {peer.version()} on {t.path.name}, {run.peer.threads} threads")
        except Exception as err:  # noqa: BLE001 - the peer is optional: its failure is reported, the run goes on
            run.peer_error = f"llama.cpp could not load {t.path.name}: {err}"


def _round(runs: list[_Run], opts: Options, r: int, record: bool) -> None:
    sampling = Sampling(max_new_tokens=opts.new_tokens)
    long_sampling = Sampling(max_new_tokens=min(LONG_NEW_TOKENS, opts.new_tokens))
    order = runs[r % len(runs):] + runs[:r % len(runs)]
    for run in order:
        if run.error:
            continue
        ways = list(paths.PATHS[r % 4:] + paths.PATHS[:r % 4])
        try:
            for way in ways:
                got = run.runners[way](_short(), sampling)
                if record:
                    run.samples[way].append(got)
            got = paths.seam(run.engine, _long(run.long_repeats), long_sampling)
            if record:
                run.samples["long"].append(got)
        except Exception as err:  # noqa: BLE001 - one target's failure is its own: reported, the others go on
            run.error = f"failed while generating: {err}"
            continue
        if run.peer is not None:
            try:
                a = run.peer.generate(_short(), opts.new_tokens)
                b = run.peer.generate(_long(run.long_repeats), long_sampling.max_new_tokens)
                if record:
                    run.peer_samples["short"].append(a)
                    run.peer_samples["long"].append(b)
            except Exception as err:  # noqa: BLE001 - the peer is optional
                run.peer_error, run.peer = f"llama.cpp failed while generating: {err}", None


def _curve(samples: list[Sample]) -> list[float]:
    """Median latency of the n-th token over the runs (ms), as long as every run has it."""
    n = min((len(s.gaps_s) for s in samples), default=0)
    return [median(s.gaps_s[i] for s in samples) * 1000 for i in range(n)]


def _figures(samples: list[Sample], long: list[Sample]) -> dict:
    s = summary(samples)
    return {"ttft_ms": {"short": s["ttft_ms"], "long": summary(long)["ttft_ms"] if long else math.nan},
            "decode_tokens_per_s": s["decode_tokens_per_s"], "token_latency_ms": s["token_latency_ms"],
            # on a shared machine the best run is what the work costs, the median what a user sees
            "best": {"ttft_short_ms": min(x.ttft_s for x in samples) * 1000,
                     "decode_tokens_per_s": max(x.decode_tokens_per_s for x in samples)},
            "tokens": s["tokens"], "pieces_per_token": s["pieces_per_token"], "token_latency_curve_ms": _curve(samples)}


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows
        return None


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ""


def _entry(run: _Run, opts: Options, bandwidth: float) -> dict:
    t = run.target
    dist = registry.get(t.engine).dists_for(t.spec.device_kind)[0]
    base = {"key": t.key, "artifact": t.artifact.id, "artifact_name": t.artifact.name,
            "engine": registry.display_name(t.engine), "engine_version": _version(dist), "device": t.device_id,
            "device_name": t.device_name, "path": str(t.path), "parallel": t.spec.parallel}
    if run.error:
        return {**base, "status": "failed", "error": run.error, **({"load_s": run.load_s} if run.load_s else {})}
    figures = _figures(run.samples["seam"], run.samples["long"])
    ways = {way: summary(run.samples[way]) for way in paths.PATHS}
    raw = ways["raw"]
    overhead = {way: {"ttft_ms": ways[way]["ttft_ms"], "decode_tokens_per_s": ways[way]["decode_tokens_per_s"],
                      "tokens_per_s_vs_raw": ratio(ways[way]["decode_tokens_per_s"], raw["decode_tokens_per_s"]),
                      "first_token_added_ms": ways[way]["ttft_ms"] - raw["ttft_ms"]} for way in paths.PATHS}
    entry = {**base, "status": "ok", "engine_class": type(run.engine).__name__, "load_s": run.load_s,
             "prompt_tokens": run.prompt_tokens, **figures, "peak_memory_bytes": run.peak,
             "resident_memory_bytes": run.resident, "peak_memory_method": run.memory_method, "overhead": overhead,
             "roofline": roofline.limit(t, bandwidth, run.prompt_tokens["short"], figures["tokens"],
                                        figures["decode_tokens_per_s"])}
    return entry


def _peer_entry(run: _Run, app: dict) -> dict | None:
    if not run.peer_samples["short"]:
        return None
    figures = _figures(run.peer_samples["short"], run.peer_samples["long"])
    return {"key": f"llama.cpp:{run.target.key}", "vs": run.target.key, "artifact": run.target.artifact.id,
            "artifact_name": run.target.artifact.name, "engine": "llama.cpp",
            "engine_version": f"llama-cpp-python {peer.version()}", "device": "CPU", "threads": run.peer.threads,
            "load_s": {"warm": run.peer.load_s}, **figures,
            "app_vs_peer": {"decode_tokens_per_s": ratio(app["decode_tokens_per_s"], figures["decode_tokens_per_s"]),
                            "ttft_short": ratio(app["ttft_ms"]["short"], figures["ttft_ms"]["short"]),
                            "ttft_long": ratio(app["ttft_ms"]["long"], figures["ttft_ms"]["long"])}}


def _clean(value):
    """JSON has no NaN: a figure that could not be had is left out (None)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _measure(targets: list[Target], opts: Options, log: Log) -> list[_Run]:
    """Load and prepare every target, warm up once, then the measured rounds; everything is closed at the end."""
    runs = [_Run(target) for target in targets]
    for run in runs:
        _load(run, log)
        if not run.error:
            try:
                _prepare(run, opts, log)
            except Exception as err:  # noqa: BLE001 - reported, the others go on
                run.error = f"could not be prepared: {err}"
        if run.peer_error:
            log("peer", 0.0, run.peer_error)
    live = [r for r in runs if not r.error]
    try:
        if live:
            t = time.perf_counter()
            _round(runs, opts, 0, record=False)
            log("warm-up", time.perf_counter() - t, f"{len(live)} target(s), every way in once")
        for r in range(opts.runs):
            t = time.perf_counter()
            _round(runs, opts, r, record=True)
            log("run", time.perf_counter() - t, f"{r + 1} of {opts.runs}: " + ", ".join(
                f"{run.target.key} {run.samples['seam'][-1].decode_tokens_per_s:.0f} tok/s"
                for run in runs if not run.error and run.samples["seam"]))
    finally:
        for run in runs:
            for close in run.closers:
                close()
            if run.engine is not None:
                run.engine.close()
            if run.peer is not None:
                run.peer.close()
    return runs


def _save_for_policy(settings: Settings, profile: MachineProfile, entries: list[dict], created: str, path: Path,
                     save: bool, log: Log) -> None:
    """The seam's figures, kept per machine for the policy (models/measured_file.py), unless --no-save."""
    measured = {e["key"]: {"artifact": e["artifact"], "device": e["device"], "engine": saved_engine(e),
                           "engine_version": e["engine_version"], "path": e["path"],
                           "tokens_per_s": e["decode_tokens_per_s"], "ttft_s": e["ttft_ms"]["short"] / 1000,
                           "measured_at": created[:10]}
                for e in entries if e["status"] == "ok" and e.get("decode_tokens_per_s")}
    if measured and not save:
        log("saved", 0.0, "nothing for the model ranking (--no-save): the report only")
    elif measured:
        where = saved.save(settings, profile, measured, path)
        log("saved", 0.0, f"{len(measured)} measurement(s) for the policy: {where}")


def bench(profile: MachineProfile, catalog: tuple[Artifact, ...], settings: Settings, opts: Options,
          log: Log = lambda *_: None) -> Path:
    """Measure, write report.json and report.png into the output folder, save the figures; the report's path."""
    out = output_folder(opts.out, settings)
    started = time.perf_counter()
    load_before = _load_average()
    targets, unusable, _ = select(profile, catalog, settings, list(opts.models), opts.device, out / "compile-cache")
    for u in unusable:
        log("skip", 0.0, f"{u.key}: {u.reason}")
    if not targets:
        raise AppError("nothing to measure: " + ("; ".join(f"{u.key}: {u.reason}" for u in unusable) or
                                                 "no cached model and no embedded model"))
    t = time.perf_counter()
    bw = read_bandwidth(opts.bandwidth_bytes, peer.threads())
    log("measure", time.perf_counter() - t, f"memory read bandwidth {bw['bytes_per_s'] / 1e9:.1f} GB/s "
        f"({bw['threads']} threads over {bw['array_bytes'] >> 20} MiB)")
    runs = _measure(targets, opts, log)
    entries = [_entry(run, opts, bw["bytes_per_s"]) for run in runs]
    peers = [p for run, e in zip(runs, entries, strict=True) if e["status"] == "ok" and (p := _peer_entry(run, e))]
    notes = list(dict.fromkeys(run.peer_error for run in runs if run.peer_error))
    report = {
        "schema": SCHEMA,
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": opts.command,
        "machine": {"id": saved.machine_id(profile), "cpu": profile.cpu.brand,
                    "cores": profile.cpu.physical_cores, "threads": profile.cpu.logical_cores,
                    "memory_bytes": profile.memory.total_bytes, "os": f"{profile.system.os} {platform.release()}",
                    "python": platform.python_version(),
                    # other work on the machine meanwhile: 1-minute load average before and after the run
                    "load_average": {"before": load_before, "after": _load_average(), "cores": os.cpu_count()}},
        "settings": {"prompt_tokens": opts.prompt_tokens, "new_tokens": opts.new_tokens, "runs": opts.runs,
                     "device": opts.device, "short_prompt": f"Story NNNN. {SHORT_PROMPT}", "greedy": True,
                     "engine_threads": peer.threads(), "seconds": time.perf_counter() - started},
        "bandwidth": bw,
        "targets": entries,
        "peers": peers,
        "unusable": [{"key": u.key, "reason": u.reason} for u in unusable],
        "notes": notes,
        "files": {"json": "report.json", "chart": "report.png"},
    }
    report = _clean(report)
    if chart.available():
        chart.draw(report, out / "report.png")
    else:
        report["files"]["chart"] = None
        report["notes"].append(chart.MISSING)
        log("chart", 0.0, chart.MISSING)
    path = out / "report.json"
    saved.write_json(path, report)
    _save_for_policy(settings, profile, entries, report["created"], path, opts.save, log)
    return path


def saved_engine(entry: dict) -> str:
    return next(k for k in registry.ids() if registry.display_name(k) == entry["engine"])


__all__ = ["Options", "Unusable", "bench"]
