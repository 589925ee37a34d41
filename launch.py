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
import re
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


INCLUDE_OPTIONS = ("-r", "--requirement", "-c", "--constraint")


def _logical_lines(text: str) -> list[str]:
    """Requirement-file lines as pip reads them: backslash continuations joined, comments dropped."""
    lines, pending = [], ""
    for raw in text.splitlines():
        if raw.endswith("\\"):
            pending += raw[:-1]
            continue
        line = re.sub(r"(^|\s)#.*$", "", pending + raw).strip()
        pending = ""
        if line:
            lines.append(line)
    return lines


def _included(line: str) -> str | None:
    """The file a `-r`/`--requirement`/`-c`/`--constraint` line names, else None."""
    first, _, rest = line.partition(" ")
    for option in INCLUDE_OPTIONS:
        if first == option:
            return rest.strip() or None
        if option.startswith("--") and first.startswith(option + "="):
            return first[len(option) + 1:]
        if not option.startswith("--") and first.startswith(option):
            return first[len(option):]
    return None


def requirement_files(req: Path) -> list[Path]:
    """The file, then every file it includes (-r, -c), recursively, each once; paths relative to the includer."""
    found: list[Path] = []
    seen: set[Path] = set()

    def visit(path: Path) -> None:
        key = path.resolve()
        if key in seen:
            return
        seen.add(key)
        found.append(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            return  # missing: still part of the digest, and pip will say so
        for line in _logical_lines(text):
            name = _included(line)
            if name and "://" not in name:
                visit(path.parent / name)

    visit(req)
    return found


def requirements_digest(req: Path) -> str:
    """SHA-256 of a requirements file together with every file it includes, so a change in any reinstalls."""
    h = hashlib.sha256()
    for path in requirement_files(req):
        try:
            data = path.read_bytes()
        except OSError:
            data = b"(missing)"
        h.update(f"{os.path.relpath(path, req.parent)}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def selects_slow_tests(pytest_args: list[str]) -> bool:
    """Could this pytest run select a test marked slow? Only `-m EXPR` deselects (the last -m wins, as in pytest).

    EXPR is pytest's marker grammar (and, or, not, parentheses, names): it selects slow tests when it is
    true for some test marked slow, whatever its other markers. Anything not understood counts as yes.
    """
    expr = None
    args = iter(pytest_args)
    for arg in args:
        if arg == "-m":
            expr = next(args, None)
        elif arg.startswith("-m"):
            expr = arg[2:].removeprefix("=")
    if expr is None:
        return True
    keywords = ("(", ")", "and", "or", "not")
    tokens = re.findall(r"[()]|[^\s()]+", expr)
    others = sorted({t for t in tokens if t not in keywords and t != "slow"})
    if not tokens or len(others) > 10 or not all(re.fullmatch(r"[\w:.+/\\-]+", t) for t in others):
        return True
    code = " ".join(t if t in keywords else f"m[{t!r}]" for t in tokens)
    try:
        compiled = compile(code, "<-m>", "eval")
    except SyntaxError:
        return True
    for bits in range(1 << len(others)):
        marks = {name: bool(bits >> i & 1) for i, name in enumerate(others)} | {"slow": True}
        if eval(compiled, {"__builtins__": {}}, {"m": marks}):  # noqa: S307 - built from checked tokens only
            return True
    return False


OPTIONAL_SETUP = "requirements-bench.txt"  # the chart tools: without them --bench still measures


def setup_files(test_args: list[str] | None, bench: bool = False) -> list[str]:
    """The requirements files to install: the app's; for --test the test tools, and the conversion tools
    (PyTorch, about 1.5 GB) only when the run can select the slow tests that build the test model; for
    --bench the benchmark's chart tools (requirements-bench.txt)."""
    names = ["requirements.txt"]
    if bench:
        names.append("requirements-bench.txt")
    if test_args is not None:
        names.append("requirements-test.txt")
        if selects_slow_tests(test_args):
            names.append("requirements-convert.txt")
    return names


def ensure_environment(test_args: list[str] | None = None, bench: bool = False) -> Path:
    """Create `.venv` when missing; (re)install each requirements file whose hash (with its includes) changed."""
    python = venv_python()
    if not python.exists():
        print(f"set-up: creating {VENV} (first run only)", flush=True)
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
    for name in setup_files(test_args, bench):
        req = ROOT / name
        stamp = VENV / f".stamp-{name}.sha256"
        want = requirements_digest(req)
        if stamp.exists() and stamp.read_text().strip() == want:
            continue
        print(f"set-up: installing {name} into .venv (only when it changes) ...", flush=True)
        install = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", "-r", str(req)]
        if name == OPTIONAL_SETUP:
            if subprocess.call(install) != 0:  # the report is still written, without its chart
                print(f"set-up: {name} could not be installed (see pip's message above): the benchmark runs "
                      "without its chart", flush=True)
                continue
        else:
            subprocess.check_call(install)
        if name == "requirements-convert.txt":
            # optimum-intel may pull a torchvision that breaks every transformers import next to the
            # pinned CPU torch ("operator torchvision::nms does not exist"); text models do not need it.
            subprocess.call([str(python), "-m", "pip", "uninstall", "-y", "-q", "torchvision"],
                            stderr=subprocess.DEVNULL)
        stamp.write_text(want)
    return python


def run_child(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
    """Run a child in this console and return its exit code.

    Ctrl-C reaches the child as well (the console, or the terminal's process group, signals both): the
    child stops in its own way, and this process keeps waiting for it instead of dying with a traceback.
    """
    child = subprocess.Popen(args, env=env, cwd=cwd)
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            continue


def reexec_in_venv(python: Path, argv: list[str], setup_seconds: float, windows: bool | None = None) -> None:
    env = dict(os.environ, **{INSIDE_FLAG: "1", SETUP_SECONDS: f"{setup_seconds:.3f}"})
    args = [str(python), str(Path(__file__).resolve()), *argv]
    if os.name == "nt" if windows is None else windows:  # execv on Windows detaches from the console: wait
        sys.exit(run_child(args, env=env))
    os.execve(str(python), args, env)


def _queue_places(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number of places, 0 or more, not {text!r}")
    return int(text)


def _at_least(low: int):
    def parse(text: str) -> int:
        if not text.isdigit() or int(text) < low:
            raise argparse.ArgumentTypeError(f"expected a whole number, {low} or more, not {text!r}")
        return int(text)

    return parse


class _Models(argparse.Action):
    """`--model` keeps its last value (the one model to run); `--bench` measures every one given (`models`)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.models = [*(getattr(namespace, "models", None) or []), values]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="launch.py",
        description="Run Microsoft Phi-3 on this PC's NPU, GPU or CPU and chat with it in the browser.",
    )
    serve = p.add_argument_group("serving")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to bind (default 127.0.0.1; any non-loopback address is LAN mode, as --lan)")
    serve.add_argument("--lan", action="store_true",
                       help="share on the local network (binds 0.0.0.0; every request needs credentials)")
    serve.add_argument("--port", type=int, default=7860, help="port; the next free one is used if taken")
    serve.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    serve.add_argument("--max-request-bytes", type=int, default=1_000_000, metavar="N",
                       help="the largest request body accepted, page and API (default 1000000; larger: HTTP 413)")
    serve.add_argument("--parallel", type=int, default=None, metavar="N",
                       help="answers generated together (continuous batching; default 4 on a CPU or GPU, 1 on an NPU)")
    serve.add_argument("--max-queue", type=_queue_places, default=16, metavar="N",
                       help="how many questions may wait behind the one being answered (default 16)")
    serve.add_argument("--auth", action="append", metavar="USER:PASS",
                       help="LAN mode: a guest login (repeatable); without --auth or --auth-file a password "
                            "is generated and printed once")
    serve.add_argument("--auth-file", metavar="FILE", help="LAN mode: guest logins, one USER:PASS per line")
    serve.add_argument("--admin", action="append", metavar="USER:PASS",
                       help="LAN mode: a host login, who may also switch models (repeatable)")
    serve.add_argument("--api-key", action="append", metavar="KEY",
                       help="LAN mode: a Bearer key for the API (repeatable; default: one generated and printed)")
    choose = p.add_argument_group("choosing the model")
    choose.add_argument("--model", metavar="ID|PATH", action=_Models,
                        help="a catalog id, or a GGUF file / model folder (with --bench: repeatable)")
    choose.add_argument("--device", choices=["auto", "cpu", "gpu", "npu", "dml"], default="auto",
                        help="run on this device kind (default: the policy decides)")
    choose.add_argument("--prefer", choices=["auto", "fastest", "efficient", "quality"], default="auto",
                        help="auto (efficient on battery, fastest on AC), fastest, efficient (NPU first), or "
                             "quality (the best model that fits, Phi-4-mini included)")
    choose.add_argument("--draft", metavar="auto|always|PATH", default="auto",
                        help="speculative decoding on a CPU or GPU with OpenVINO GenAI (default auto: the catalog's "
                             "paired draft model, FastDraft for Phi-3-mini, fetched when missing, unless it would cost "
                             "JSON answers or memory); always: that draft even if JSON answers are then refused; or a "
                             "draft model folder with the same tokenizer")
    choose.add_argument("--no-draft", dest="draft", action="store_const", const="",
                        help="no speculative decoding")
    choose.add_argument("--prompt-lookup", action="store_true",
                        help="prompt-lookup decoding on a CPU or GPU with OpenVINO GenAI: faster rewrites, summaries "
                             "and code edits (answers are the same)")
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
    bench = p.add_argument_group("benchmark (--bench)")
    bench.add_argument("--bench", action="store_true",
                       help="measure every engine and device here (the cached models and the embedded one, or "
                            "each --model), write report.json and report.png, print the report's path")
    bench.add_argument("--prompt-tokens", type=_at_least(16), default=512, metavar="N",
                       help="with --bench: the long prompt's length in tokens (default 512)")
    bench.add_argument("--new-tokens", type=_at_least(2), default=128, metavar="M",
                       help="with --bench: tokens generated per run (default 128)")
    bench.add_argument("--runs", type=_at_least(1), default=3, metavar="R",
                       help="with --bench: interleaved runs after one warm-up (default 3)")
    bench.add_argument("--no-save", action="store_true",
                       help="with --bench: keep the figures out of the model ranking (a quick look; only the report)")
    bench.add_argument("--out", metavar="DIR",
                       help="with --bench: the report's folder (default: a new one under the app home's bench/)")
    once.add_argument("--test", nargs=argparse.REMAINDER, metavar="PYTEST_ARGS",
                      help="install the test requirements and run the test suite (extra args go to pytest)")
    p.set_defaults(models=None)
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
    from webui.cli import run  # noqa: PLC0415 - only importable inside the environment

    try:
        return run(args, setup_seconds=setup_seconds)
    except KeyboardInterrupt:
        print("\nStopped.")
        return 130


if __name__ == "__main__":
    sys.exit(main())
