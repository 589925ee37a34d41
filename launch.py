#!/usr/bin/env python3
"""One command from nothing to a local Phi-3 chat in the browser.

    python launch.py                 # set up .venv, probe, pick, fetch, load, serve
    python launch.py --ask "Hi"      # one answer in the terminal
    python launch.py --test          # run the test suite in the same environment

The top of this file uses the standard library only: it runs under any Python >= 3.10,
creates `.venv/` next to it, installs `requirements.txt` there (again only when that file
changes) and re-executes itself inside it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
MIN_PYTHON = (3, 10)
INSIDE_FLAG = "PHI3PC_IN_VENV"
SETUP_SECONDS = "PHI3PC_SETUP_SECONDS"


def venv_python(venv: Path = VENV, windows: bool | None = None) -> Path:
    """The interpreter inside a virtual environment (`Scripts` on Windows, `bin` elsewhere)."""
    if os.name == "nt" if windows is None else windows:
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ensure_environment(with_tests: bool = False) -> Path:
    """Create `.venv` when missing; (re)install each requirements file whose hash changed."""
    python = venv_python()
    if not python.exists():
        print(f"set-up: creating {VENV} (first run only)", flush=True)
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
    names = ["requirements.txt"] + (["requirements-test.txt"] if with_tests else [])
    for name in names:
        req = ROOT / name
        stamp = VENV / f".stamp-{name}.sha256"
        want = _digest(req)
        if stamp.exists() and stamp.read_text().strip() == want:
            continue
        print(f"set-up: installing {name} into .venv (only when it changes) ...", flush=True)
        subprocess.check_call(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", "-r", str(req)]
        )
        if name == "requirements-test.txt":
            # optimum-intel may pull a torchvision that breaks every transformers import next to the
            # pinned CPU torch ("operator torchvision::nms does not exist"); text models do not need it.
            subprocess.call([str(python), "-m", "pip", "uninstall", "-y", "-q", "torchvision"],
                            stderr=subprocess.DEVNULL)
        stamp.write_text(want)
    return python


def reexec_in_venv(python: Path, argv: list[str], setup_seconds: float) -> None:
    env = dict(os.environ, **{INSIDE_FLAG: "1", SETUP_SECONDS: f"{setup_seconds:.3f}"})
    args = [str(python), str(Path(__file__).resolve()), *argv]
    if os.name == "nt":  # execv on Windows detaches from the console; wait instead
        sys.exit(subprocess.call(args, env=env))
    os.execve(str(python), args, env)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="launch.py",
        description="Run Microsoft Phi-3 on this PC's NPU, GPU or CPU and chat with it in the browser.",
    )
    serve = p.add_argument_group("serving")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--lan", action="store_true", help="share on the local network (binds 0.0.0.0)")
    serve.add_argument("--port", type=int, default=7860, help="port; the next free one is used if taken")
    serve.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    choose = p.add_argument_group("choosing the model")
    choose.add_argument("--model", metavar="ID|PATH", help="a catalog id, or a GGUF file / model folder")
    choose.add_argument("--device", choices=["auto", "cpu", "gpu", "npu", "dml"], default="auto",
                        help="run on this device kind (default: the policy decides)")
    choose.add_argument("--prefer", choices=["auto", "fastest", "efficient"], default="auto",
                        help="auto (efficient on battery, fastest on AC), fastest, or efficient (NPU first)")
    choose.add_argument("--offline", action="store_true",
                        help="never touch the network: cached artifacts or the embedded model only")
    choose.add_argument("--probe-file", metavar="FILE",
                        help="use a recorded machine profile (from --probe) instead of this machine")
    once = p.add_argument_group("one-shot commands")
    once.add_argument("--probe", action="store_true", help="print this machine's profile as JSON and exit")
    once.add_argument("--explain", action="store_true", help="print the ranked candidates with reasons and exit")
    once.add_argument("--json", action="store_true", help="with --explain: print JSON")
    once.add_argument("--ask", metavar="PROMPT", help="stream one answer to the terminal, print its figures, exit")
    once.add_argument("--max-new-tokens", type=int, default=512, help="answer length limit (default 512)")
    once.add_argument("--convert", metavar="SOURCE",
                      help="convert a hub id or a local checkpoint folder (with --to); installs the "
                           "conversion tools on first use (about 1.5 GB)")
    once.add_argument("--to", choices=["openvino-int4", "openvino-fp16", "openvino-npu", "openvino-npu-gq",
                                       "onnx-int4-cpu", "onnx-int4-dml"], help="the format --convert produces")
    once.add_argument("--setup-only", action="store_true", help="create or refresh .venv and exit")
    once.add_argument("--test", nargs=argparse.REMAINDER, metavar="PYTEST_ARGS",
                      help="install the test requirements and run the test suite (extra args go to pytest)")
    return p


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
            python = ensure_environment(with_tests)
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
        return subprocess.call([sys.executable, "-m", "pytest", *args.test], cwd=ROOT)
    from webui.cli import run  # noqa: PLC0415 - only importable inside the environment

    try:
        return run(args, setup_seconds=setup_seconds)
    except KeyboardInterrupt:
        print("\nStopped.")
        return 130


if __name__ == "__main__":
    sys.exit(main())
