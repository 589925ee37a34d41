"""launch.py's set-up, and the names launch.py and the app share. Standard library only: launch.py runs this under
any Python >= 3.10, before anything is installed: it creates `.venv/` beside launch.py, installs each requirements
file there (again only when that file, or one it includes, changes) and re-runs launch.py inside it."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

from models.tools import drop_torchvision

INSIDE_FLAG = "PHI3PC_IN_VENV"  # set by launch.py when it re-runs itself inside the app's environment
SETUP_SECONDS = "PHI3PC_SETUP_SECONDS"  # how long launch.py's set-up took, for the first progress line
ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
MIN_PYTHON = (3, 10)


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
            drop_torchvision(str(python))
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
    args = [str(python), str(ROOT / "launch.py"), *argv]
    if os.name == "nt" if windows is None else windows:  # execv on Windows detaches from the console: wait
        sys.exit(run_child(args, env=env))
    os.execve(str(python), args, env)
