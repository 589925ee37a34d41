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
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from capabilities import MachineProfile, ProfileError, load_profile, probe
from models import converted, store
from models.bench import saved
from models.catalog import Artifact, load_catalog
from models.engines import Sampling, load
from models.errors import AppError, ArtifactUnavailable
from models.policy import Availability, Candidate, Measured, Preference, rank, required_bytes
from models.settings import Settings, home_problem, load_settings
from models.startup import Loaded, availability, local_artifact, spec_for, start

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


def _catalog_and_pref(args: Namespace, settings: Settings,
                      problems: list[str] | None = None) -> tuple[tuple[Artifact, ...], Preference]:
    catalog = load_catalog() + converted.artifacts(settings, problems)
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
    """Every user error, bad file or unavailable resource ends in one line and a non-zero exit:
    2 for what was given on the command line (a flag, a profile file), 1 for the rest."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C works from the first step, even when started from a shell that ignores SIGINT for background jobs
        signal.signal(signal.SIGINT, signal.default_int_handler)
    _safe_console()
    _drop_widening_environment()
    if setup_seconds:
        step("set-up", setup_seconds, "environment ready")
    try:
        return _run(args)
    except ProfileError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except AppError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # a cache folder that cannot be written, a device that went away
        where = f" ({err.filename})" if getattr(err, "filename", None) else ""
        print(f"error: {err.strerror or err}{where}. Check that folder, or set PHI3PC_HOME to another one.",
              file=sys.stderr)
        return 1


# Gradio settings an inherited environment could set to widen what is served (files by path, an MCP server,
# server-side rendering, a public share link, code editing from the page, reloading, another address).
WIDENING_ENVIRONMENT = ("GRADIO_ALLOWED_PATHS", "GRADIO_MCP_SERVER", "GRADIO_SSR_MODE", "GRADIO_SHARE",
                        "GRADIO_VIBE_MODE", "GRADIO_WATCH_DIRS", "GRADIO_SERVER_NAME")


def _drop_widening_environment() -> None:
    """Before Gradio is imported (some are read at import): the app decides what it serves, not the shell."""
    dropped = [name for name in WIDENING_ENVIRONMENT if os.environ.pop(name, None) is not None]
    if dropped:
        print(f"note: ignoring {', '.join(dropped)} from the environment (the app sets what it serves itself)",
              file=sys.stderr)


def _safe_console() -> None:
    """An answer piped to a file on Windows would be written in the ANSI code page and raise on the first
    character it lacks: write UTF-8 to pipes and files, and replace what a console cannot show."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is None:
            continue
        try:
            if stream.isatty():
                reconfigure(errors="replace")
            else:
                reconfigure(encoding="utf-8", errors="replace")
        except (OSError, ValueError):
            pass


def _run(args: Namespace) -> int:
    if args.convert or args.to:
        return _convert(args)
    if args.probe:
        profile = load_profile(args.probe_file) if args.probe_file else probe()
        print(profile.to_json())
        return 0
    if getattr(args, "bench", False):
        return _bench(args)
    access, shown = None, ()
    if args.ask is None and not args.explain:  # serving: credentials are checked before anything loads
        from .auth import CredentialsError, from_args, is_loopback

        try:
            access, shown = from_args(args, lan=args.lan or not is_loopback(args.host))
        except CredentialsError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    parallel = args.parallel if args.parallel is not None else (1 if args.ask is not None else None)
    settings = load_settings(offline=args.offline, parallel=parallel, draft=getattr(args, "draft", ""),
                             prompt_lookup=getattr(args, "prompt_lookup", False))
    unusable = home_problem(settings.home)
    if unusable:
        raise AppError(unusable)
    profile = _profile(args)
    problems: list[str] = []
    catalog, pref = _catalog_and_pref(args, settings, problems)
    for problem in problems:
        print(f"note: {problem}", file=sys.stderr)
    measured = saved.load(settings, profile)  # the speeds --bench measured on this machine
    if args.explain:
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
    loaded = start(profile, catalog, settings, pref, log=step, progress=ConsoleProgress(), measured=measured)
    loaded.notices[:0] = problems
    for notice in loaded.notices[len(problems):]:
        print(f"note: {notice}", file=sys.stderr)
    if args.ask is not None:
        return _ask(loaded, args.ask, args.max_new_tokens)
    return _serve(args, profile, loaded, settings, catalog, pref, access, shown)


def _convert(args: Namespace) -> int:
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


def _bench(args: Namespace) -> int:
    """--bench: progress on stderr, the figures on stdout, the report's path as the last line."""
    import shlex

    from models.bench import options, table
    from models.bench import run as bench_run

    settings = load_settings(offline=args.offline, parallel=args.parallel)
    out = bench_run.output_folder(Path(args.out).expanduser() if args.out else None, settings)  # before any work
    profile = _profile(args)
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


def _ask(loaded: Loaded, prompt: str, max_new_tokens: int) -> int:
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


def page_info(profile: MachineProfile, loaded: Loaded):
    from .app import PageInfo

    return PageInfo(
        title="Phi-3 on this PC",
        running=_running_text(loaded),
        notices=tuple(loaded.notices),
        machine_rows=views.machine_rows(profile),
        device_rows=views.device_rows(profile),
        explanation=views.explain_markdown(loaded.ranking, running=loaded.candidate),
        running_device=loaded.candidate.device_id,
    )


def _running_text(loaded: Loaded) -> str:
    c = loaded.candidate
    return f"{c.artifact.name} on {c.device_name} with {loaded.engine.name}"


def _available_now(profile: MachineProfile, recorded: bool) -> int:
    if recorded:
        return profile.memory.available_bytes  # a recorded machine's memory, as recorded
    import psutil

    return int(psutil.virtual_memory().available)


def _chooser(profile: MachineProfile, settings: Settings, catalog: tuple[Artifact, ...], base: Preference,
             service, running: dict, recorded: bool = False, measured: Callable[[], Measured] = Measured):
    """The page's preference controls: re-rank, and load the new first choice in place of the old engine.

    `running["loaded"]` is the Loaded being served. A switch ranks with the memory free now plus what the
    running model will give back; when the new one does not fit beside it, the running one is unloaded
    first (and reloaded if nothing new can start)."""
    from .app import Chooser

    reach = store.hub_reachable(settings)  # once: a dropdown change must not wait on the network

    def pref_for(mode: str, device: str, model: str) -> Preference:
        return Preference(mode=mode, device=device, model=None if model in ("", "auto") else model)

    def explain(mode: str, device: str, model: str) -> str:
        ranking = rank(profile, catalog, pref_for(mode, device, model), availability(catalog, settings, reach),
                       measured())
        return views.explain_markdown(ranking, running=running["loaded"].candidate)

    def switch(mode: str, device: str, model: str, progress=None) -> tuple[str, tuple[str, ...]]:
        old: Loaded = running["loaded"]
        held = required_bytes(old.artifact, old.candidate.context_length)
        free = _available_now(profile, recorded)
        now = replace(profile, memory=replace(profile.memory, available_bytes=free + held))

        def before_load(candidate: Candidate) -> str | None:
            need = required_bytes(candidate.artifact, candidate.context_length)
            if service.engine is None or need <= _available_now(profile, recorded):
                return None
            service.release()
            return (f"Unloaded {old.candidate.label} first: it and {candidate.label} do not both fit in memory "
                    "(the chat was kept).")

        try:
            loaded = start(now, catalog, settings, pref_for(mode, device, model), log=step, progress=progress,
                           before_load=before_load, measured=measured())
        except AppError as err:
            if service.engine is None:  # unloaded for nothing: bring the old model back
                back = load(spec_for(old.candidate, Path(old.engine.spec.path), settings))
                service.swap(back)
                running["loaded"] = Loaded(back, old.candidate, old.ranking, old.notices)
            raise AppError(f"{err} Still running {_running_text(running['loaded'])}.") from err
        previous = service.swap(loaded.engine)
        if previous is not None:
            previous.close()
        running["loaded"] = loaded
        return _running_text(loaded), tuple(loaded.notices)

    models = (("auto: let the app choose", "auto"),) + tuple(
        (f"{a.name} ({a.download_bytes / 1e9:.1f} GB)" if a.download_bytes else a.name, a.id) for a in catalog)
    return Chooser(explain=explain, switch=switch, models=models)


def _serve(args: Namespace, profile: MachineProfile, loaded: Loaded, settings: Settings,
           catalog: tuple[Artifact, ...], pref: Preference, access, shown: tuple[str, ...] = ()) -> int:
    """`access` (webui/auth.py) says who may do what; `shown` are the lines printed once (generated secrets)."""
    from fastapi import Depends

    from . import api
    from .app import build_app, launch_kwargs
    from .bench_tab import BenchTab
    from .chat import ChatService
    from .security import GradioSessions, Guard, machine_hosts
    from .server import free_port, has_display, lan_addresses, open_browser, qr_console, web_app
    from .server import start as start_server
    from .sessions import SessionBinding

    t = time.perf_counter()
    host = "0.0.0.0" if args.lan else args.host
    port = free_port(host, args.port)
    if port != args.port:
        print(f"note: port {args.port} is taken; using {port}")
    service = ChatService(loaded.engine, max_queue=args.max_queue)
    running = {"loaded": loaded}
    chooser = _chooser(profile, settings, catalog, pref, service, running, recorded=bool(args.probe_file),
                       measured=lambda: saved.load(settings, profile))  # read anew: a --bench run since counts
    addresses = (lan_addresses() if host in ("0.0.0.0", "::") else [host]) if access.lan else []
    network_urls = [f"http://{a}:{port}" for a in addresses]
    info = replace(page_info(profile, loaded), join_url=network_urls[0] if network_urls else "")
    bench = BenchTab(settings.home)  # the Benchmark tab's one run at a time; ended below when the app exits
    blocks = build_app(service, info, chooser, access, bench)
    blocks.queue(default_concurrency_limit=1, api_open=False)

    def other_models() -> list[str]:  # what the page could switch to; the API lists them, never switches
        return list(dict.fromkeys(c.artifact.id for c in running["loaded"].ranking.candidates))

    routers = [api.router(service, lambda: running["loaded"].artifact.id, other_models,
                          dependencies=[Depends(access.api_dependency)], default_max_tokens=args.max_new_tokens)]
    sessions = GradioSessions()
    # The last one added runs first: one size limit for every body (nothing reads more, the guard's own login
    # form included); then the guard; then each Gradio session id and answer is bound to the browser that
    # started it (webui/sessions.py).
    middleware = [(SessionBinding, {"handlers": lambda: set(blocks.fns)}),
                  (Guard, {"access": access, "hosts": machine_hosts(host, access.lan, addresses), "port": port,
                           "sessions": sessions}),
                  (api.BodyLimit, {"max_bytes": args.max_request_bytes})]
    try:
        web = web_app(blocks, routers=routers, middleware=middleware, auth=access.check if access.lan else None,
                      **launch_kwargs())
        sessions.attach(web)
        api.install_error_handlers(web)
        server = start_server(web, host, port)
    except OSError as err:  # taken by another program between the check and the bind
        service.release()
        raise AppError(f"port {port} on {host} could not be opened ({err.strerror or err}); start again, "
                       "or pass --port") from err
    url = server.url
    step("ready", time.perf_counter() - t, url)
    if access.lan:
        for network_url in network_urls:
            print(f"         on the network: {network_url}")
        if network_urls:
            print(f"         scan to open {network_urls[0]} on a phone:\n{qr_console(network_urls[0])}", end="")
        print("         every request needs credentials: a login for the page, a Bearer key for the API")
        for line in shown:  # generated password and key: here once, nowhere else
            print(line)
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
        bench.close()  # a benchmark still running ends with the app
        server.close()
        service.release()  # the engine running now, which a switch may have changed
    return 0
