"""The command line's dispatch, once inside the environment: probe -> profile -> policy -> artifact -> engine, then
serve the page and the API, or answer once (--ask), or one of the other commands (app/commands.py)."""

from __future__ import annotations

import os
import platform
import signal
import sys
import threading
from argparse import Namespace
from pathlib import Path

from capabilities import ProfileError, Sources, load_profile, probe
from models import converted
from models import measured_file as saved
from models.catalog import Artifact, load_catalog
from models.engines import registry
from models.errors import AppError, ArtifactUnavailable
from models.policy import Preference
from models.settings import Settings, home_problem, load_settings
from models.startup import local_artifact, start

from . import commands
from .console import ConsoleProgress, drop_widening_environment, safe_console, step


def run(args: Namespace, setup_seconds: float = 0.0) -> int:
    """Every user error, bad file or unavailable resource ends in one line and a non-zero exit:
    2 for what was given on the command line (a flag, a profile file), 1 for the rest."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C works from the first step, even when started from a shell that ignores SIGINT for background jobs
        signal.signal(signal.SIGINT, signal.default_int_handler)
    safe_console()
    drop_widening_environment()
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


def catalog_and_preference(args: Namespace, settings: Settings,
                           problems: list[str] | None = None) -> tuple[tuple[Artifact, ...], Preference]:
    """The catalog with the converted models, and --model PATH as a local entry; the preference of the flags."""
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


def _run(args: Namespace) -> int:
    if args.convert or args.to:
        return commands.convert(args)
    if args.probe:
        profile = load_profile(args.probe_file) if args.probe_file else probe(Sources(packages=registry.packages()))
        print(profile.to_json())
        return 0
    if getattr(args, "bench", False):
        return commands.bench(args)
    access, shown = None, ()
    if args.ask is None and not args.explain:  # serving: credentials are checked before anything loads
        from webui.auth import CredentialsError, from_args, is_loopback

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
    profile = commands.machine_profile(args)
    problems: list[str] = []
    catalog, pref = catalog_and_preference(args, settings, problems)
    for problem in problems:
        print(f"note: {problem}", file=sys.stderr)
    measured = saved.load(settings, profile)  # the speeds --bench measured on this machine
    if args.explain:
        return commands.explain(args, profile, catalog, pref, settings, measured)
    loaded = start(profile, catalog, settings, pref, log=step, progress=ConsoleProgress(), measured=measured)
    loaded.notices[:0] = problems
    for notice in loaded.notices[len(problems):]:
        print(f"note: {notice}", file=sys.stderr)
    if args.ask is not None:
        return commands.ask(loaded, args.ask, args.max_new_tokens)
    from .serve import serve

    return serve(args, profile, loaded, settings, catalog, access, shown)
