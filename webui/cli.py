"""The steps behind launch.py, once inside the environment: probe, pick, fetch, load, then serve or answer."""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from argparse import Namespace
from pathlib import Path

from capabilities import MachineProfile, load_profile, probe
from models import converted, store
from models.catalog import Artifact, load_catalog
from models.engines import Sampling
from models.errors import AppError, ArtifactUnavailable
from models.policy import Availability, Preference, rank
from models.settings import Settings, load_settings
from models.startup import Loaded, availability, local_artifact, start

from . import views


class ConsoleProgress:
    """Download progress (bytes, rate, time left) on the console, every few seconds."""

    def __init__(self, every_s: float = 2.0):
        self._every, self._last = every_s, 0.0

    def __call__(self, p) -> None:
        now = time.monotonic()
        if now - self._last < self._every or p.total_bytes < 10_000_000:
            return
        self._last = now
        print(f"           downloading {p.line()}", file=sys.stderr, flush=True)


def step(name: str, seconds: float, detail: str = "") -> None:
    """Progress goes to stderr: stdout carries only what was asked for (JSON, an answer)."""
    print(f"[{seconds:6.2f}s] {name:<8} {detail}", file=sys.stderr, flush=True)


def _profile(args: Namespace) -> MachineProfile:
    t = time.perf_counter()
    profile = load_profile(args.probe_file) if args.probe_file else probe()
    where = f"recorded profile {args.probe_file}" if args.probe_file else "this machine"
    step("probe", time.perf_counter() - t, f"{where}: {profile.cpu.brand}, "
         f"{len([d for d in profile.devices if d.present])} device(s) usable")
    return profile


def _catalog_and_pref(args: Namespace, settings: Settings) -> tuple[tuple[Artifact, ...], Preference]:
    catalog = load_catalog() + converted.artifacts(settings)
    model = args.model
    if model and not any(a.id == model for a in catalog):
        if not Path(model).expanduser().exists():
            raise ArtifactUnavailable(f"'{model}' is neither a catalog id (`python launch.py --explain` lists them) "
                                      "nor an existing file or folder")
        local = local_artifact(model)  # a path: detect its format, or say what is missing
        if local.format == "hf-checkpoint" and platform.system() != "Windows":
            raise ArtifactUnavailable(
                f"{model} is a Hugging Face checkpoint: only the Intel NPU Acceleration Library runs those "
                f"directly (Windows). Convert it first: `python launch.py --convert {model} --to openvino-int4` "
                "(or onnx-int4-cpu), then run the converted model")
        catalog += (local,)
        model = local.id
    return catalog, Preference(mode=getattr(args, "prefer", "auto"), device=args.device, model=model)


def run(args: Namespace, setup_seconds: float = 0.0) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if setup_seconds:
        step("set-up", setup_seconds, "environment ready")
    if args.convert or args.to:
        return _convert(args)
    if args.probe:
        profile = load_profile(args.probe_file) if args.probe_file else probe()
        print(profile.to_json())
        return 0
    try:
        profile = _profile(args)
        settings = load_settings(offline=args.offline)
        catalog, pref = _catalog_and_pref(args, settings)
        if args.explain:
            if args.probe_file:
                # Another machine: its cache and network are unknown here. Explain what it would pick
                # with the hub reachable and nothing downloaded yet.
                print("note: recorded machine: assuming it can reach the Hugging Face Hub and has nothing "
                      "cached", file=sys.stderr)
                avail = Availability(offline=args.offline)
            else:
                avail = availability(catalog, settings)
            ranking = rank(profile, catalog, pref, avail)
            print(json.dumps(ranking.to_dict(), indent=2) if args.json else views.explain_text(ranking))
            return 0
        loaded = start(profile, catalog, settings, pref, log=step, progress=ConsoleProgress())
    except AppError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for notice in loaded.notices:
        print(f"note: {notice}", file=sys.stderr)
    if args.ask is not None:
        return _ask(loaded, args.ask, args.max_new_tokens)
    return _serve(args, profile, loaded, settings, catalog, pref)


def _convert(args: Namespace) -> int:
    if not (args.convert and args.to):
        print("error: --convert SOURCE and --to TARGET go together", file=sys.stderr)
        return 2
    settings = load_settings(offline=args.offline)
    t = time.perf_counter()
    try:
        out = converted.run(args.convert, args.to, settings, log=lambda m: print(m, file=sys.stderr, flush=True))
    except (AppError, subprocess.CalledProcessError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    step("convert", time.perf_counter() - t, str(out))
    print(f"converted:{out.name}")
    print(f"Run it with: python launch.py --model converted:{out.name}", file=sys.stderr)
    return 0


def _ask(loaded: Loaded, prompt: str, max_new_tokens: int) -> int:
    reply = loaded.engine.stream([{"role": "user", "content": prompt}], Sampling(max_new_tokens=max_new_tokens))
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


def page_info(profile: MachineProfile, loaded: Loaded):
    from .app import PageInfo

    return PageInfo(
        title="Phi-3 on this PC",
        running=_running_text(loaded),
        notices=tuple(loaded.notices),
        machine_rows=views.machine_rows(profile),
        device_rows=views.device_rows(profile),
        explanation=views.explain_markdown(loaded.ranking),
    )


def _running_text(loaded: Loaded) -> str:
    c = loaded.candidate
    return f"{c.artifact.name} on {c.device_name} with {loaded.engine.name}"


def _chooser(profile: MachineProfile, settings: Settings, catalog: tuple[Artifact, ...], base: Preference,
             service):
    """The page's preference controls: re-rank, and load the new first choice in place of the old engine."""
    from .app import Chooser

    reach = store.hub_reachable(settings)  # once: a dropdown change must not wait on the network

    def pref_for(mode: str, device: str, model: str) -> Preference:
        return Preference(mode=mode, device=device, model=None if model in ("", "auto") else model)

    def explain(mode: str, device: str, model: str) -> str:
        ranking = rank(profile, catalog, pref_for(mode, device, model), availability(catalog, settings, reach))
        return views.explain_markdown(ranking)

    def switch(mode: str, device: str, model: str, progress=None) -> tuple[str, tuple[str, ...]]:
        loaded = start(profile, catalog, settings, pref_for(mode, device, model), log=step, progress=progress)
        service.swap(loaded.engine).close()
        return _running_text(loaded), tuple(loaded.notices)

    models = (("auto: let the app choose", "auto"),) + tuple(
        (f"{a.name} ({a.download_bytes / 1e9:.1f} GB)" if a.download_bytes else a.name, a.id) for a in catalog)
    return Chooser(explain=explain, switch=switch, models=models)


def _serve(args: Namespace, profile: MachineProfile, loaded: Loaded, settings: Settings,
           catalog: tuple[Artifact, ...], pref: Preference) -> int:
    from .app import build_app, launch_kwargs
    from .chat import ChatService
    from .server import free_port, has_display, lan_addresses, open_browser

    t = time.perf_counter()
    host = "0.0.0.0" if args.lan else args.host
    port = free_port(host, args.port)
    if port != args.port:
        print(f"note: port {args.port} is taken; using {port}")
    service = ChatService(loaded.engine)
    app = build_app(service, page_info(profile, loaded), _chooser(profile, settings, catalog, pref, service))
    app.queue(default_concurrency_limit=1)
    app.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=True,
               **launch_kwargs())
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    step("ready", time.perf_counter() - t, url)
    if args.lan:
        for addr in lan_addresses():
            print(f"         on the network: http://{addr}:{port}")
    if not args.no_browser and has_display():
        open_browser(url)
    print("Press Ctrl-C to stop.", flush=True)
    stop = threading.Event()
    # Ctrl-C even when started from a shell that ignores SIGINT for background jobs; SIGTERM (a service
    # manager, `kill`) ends the app the same clean way.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        print("\nStopping ...", flush=True)
        app.close()
        loaded.engine.close()
    return 0
