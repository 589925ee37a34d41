#!/usr/bin/env python3
"""One command from nothing to a local Phi-3 chat in the browser.

    python launch.py                 # set up .venv, probe, pick, fetch, load, serve
    python launch.py --ask "Hi"      # one answer in the terminal
    python launch.py --test          # run the test suite in the same environment

Until it runs inside its environment it uses the standard library only (app/environment.py): it runs under any
Python >= 3.10, creates `.venv/` next to it, installs `requirements.txt` there (again only when that file changes)
and re-executes itself inside it; then app/cli.py does the rest.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from app.arguments import build_parser
from app.environment import (
    INSIDE_FLAG,
    MIN_PYTHON,
    ROOT,
    SETUP_SECONDS,
    VENV,
    ensure_environment,
    reexec_in_venv,
    run_child,
)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if sys.version_info < MIN_PYTHON:
        print(f"Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer is needed; this is {sys.version.split()[0]}.")
        return 2
    with_tests = args.test is not None
    if not os.environ.get(INSIDE_FLAG) and not os.environ.get("PHI3PC_NO_VENV"):
        started = time.perf_counter()
        try:
            python = ensure_environment(args.test, bench=args.bench)
        except subprocess.CalledProcessError as err:
            print(f"set-up failed: {err}. Fix the message above and run launch.py again.")
            return 1
        setup = time.perf_counter() - started
        if args.setup_only:
            print(f"[{setup:6.1f}s] set-up: {VENV} is ready")
            return 0
        reexec_in_venv(python, argv, setup)
    setup_seconds = float(os.environ.pop(SETUP_SECONDS, "0"))  # not inherited by child processes
    if args.setup_only:
        print(f"{VENV} is ready")
        return 0
    if with_tests:
        return run_child([sys.executable, "-m", "pytest", *args.test], cwd=ROOT)
    from app.cli import run  # noqa: PLC0415 - only importable inside the environment

    try:
        return run(args, setup_seconds=setup_seconds)
    except KeyboardInterrupt:
        print("\nStopped.")
        return 130


if __name__ == "__main__":
    sys.exit(main())
