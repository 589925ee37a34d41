"""The one-shot commands: --ask (one answer on the console), --convert, --bench, --explain. Each prints progress on
stderr and what was asked for on stdout, and returns the exit code."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from argparse import Namespace
from pathlib import Path

from capabilities import MachineProfile, Sources, load_profile, probe
from models import converted
from models.catalog import Artifact, load_catalog
from models.engines import Sampling, registry
from models.errors import AppError
from models.policy import Availability, Measured, Preference, rank
from models.settings import Settings, load_settings
from models.startup import Loaded, availability
from webui import views

from .console import step


def machine_profile(args: Namespace) -> MachineProfile:
    """This machine's profile (probed with the engines the registry knows), or the recorded one of --probe-file."""
    t = time.perf_counter()
    profile = load_profile(args.probe_file) if args.probe_file else probe(Sources(packages=registry.packages()))
    where = f"recorded profile {args.probe_file}" if args.probe_file else "this machine"
    step("probe", time.perf_counter() - t, f"{where}: {profile.cpu.brand}, "
         f"{len([d for d in profile.devices if d.present])} device(s) usable")
    return profile


def convert(args: Namespace) -> int:
    if not (args.convert and args.to):
        print("error: --convert SOURCE and --to TARGET go together", file=sys.stderr)
        return 2
    settings = load_settings(offline=args.offline)
    t = time.perf_counter()
    try:
        out = converted.run(args.convert, args.to, settings, log=lambda m: print(m, file=sys.stderr, flush=True))
    except subprocess.CalledProcessError as err:
        print(f"error: installing the conversion tools failed ({err}); see the lines above", file=sys.stderr)
        return 1
    step("convert", time.perf_counter() - t, str(out))
    print(f"converted:{out.name}")
    print(f"Run it with: python launch.py --model converted:{out.name}", file=sys.stderr)
    return 0


def bench(args: Namespace) -> int:
    """--bench: progress on stderr, the figures on stdout, the report's path as the last line."""
    import shlex

    from bench import options, table
    from bench import run as bench_run

    settings = load_settings(offline=args.offline, parallel=args.parallel)
    out = bench_run.output_folder(Path(args.out).expanduser() if args.out else None, settings)  # before any work
    profile = machine_profile(args)
    problems: list[str] = []
    catalog = load_catalog() + converted.artifacts(settings, problems)
    for problem in problems:
        print(f"note: {problem}", file=sys.stderr)
    opts = options(models=tuple(args.models or ()), device=args.device, prompt_tokens=args.prompt_tokens,
                   new_tokens=args.new_tokens, runs=args.runs, out=out, save=not args.no_save,
                   command=shlex.join(["python", "launch.py", *sys.argv[1:]]))
    path = bench_run.bench(profile, catalog, settings, opts, log=step)
    print(table.text(json.loads(path.read_text(encoding="utf-8"))))
    print(path, flush=True)
    return 0


def ask(loaded: Loaded, prompt: str, max_new_tokens: int) -> int:
    try:
        reply = loaded.engine.stream([{"role": "user", "content": prompt}], Sampling(max_new_tokens=max_new_tokens))
    except AppError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        for delta in reply:
            print(delta, end="", flush=True)
    except AppError as err:
        print(f"\nerror: {err}", file=sys.stderr)
        return 1
    print()
    print(f"-- {reply.stats.line()} · {reply.stats.finish_reason}" if reply.stats else "--")
    for notice in reply.notices:
        print(f"note: {notice}")
    return 0




def explain(args: Namespace, profile: MachineProfile, catalog: tuple[Artifact, ...], pref: Preference,
            settings: Settings, measured: Measured) -> int:
    """--explain: the ranking for this machine (or a recorded one) and why, as text or JSON."""
    if args.probe_file:
        # Another machine: its cache and network are unknown here. Explain what it would pick
        # with the hub reachable and nothing downloaded yet.
        print("note: recorded machine: assuming it can reach the Hugging Face Hub and has nothing "
              "cached", file=sys.stderr)
        avail = Availability(offline=args.offline)
    else:
        avail = availability(catalog, settings)
    ranking = rank(profile, catalog, pref, avail, measured=measured)
    print(json.dumps(ranking.to_dict(), indent=2) if args.json else views.explain_text(ranking))
    return 0
