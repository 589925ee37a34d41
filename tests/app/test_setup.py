"""launch.py's set-up: what it installs, when it reinstalls, and how the Windows parent waits for its child."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from app import environment
from tests.conftest import ROOT

REQUIREMENT_FILES = ("requirements.txt", "requirements-test.txt", "requirements-convert.txt",
                     "requirements-bench.txt")


@pytest.fixture
def reqs(tmp_path: Path) -> Path:
    """A copy of this repository's requirement files."""
    for name in REQUIREMENT_FILES:
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_the_stamp_changes_when_an_included_file_changes(reqs):
    before = environment.requirements_digest(reqs / "requirements-test.txt")
    with open(reqs / "requirements.txt", "a") as fh:
        fh.write("psutil>=6\n")  # requirements-test.txt includes requirements.txt: the test set-up must rerun
    assert environment.requirements_digest(reqs / "requirements-test.txt") != before


def test_includes_are_followed_recursively_relative_to_the_includer_and_once(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "top.txt").write_text("# -r ignored.txt\n-r sub/mid.txt\ngradio  # -r also-ignored.txt\n")
    (tmp_path / "sub" / "mid.txt").write_text("--requirement=leaf.txt\n-c ../pins.txt\n-r \\\n  ../top.txt\n")
    (tmp_path / "sub" / "leaf.txt").write_text("psutil\n")
    (tmp_path / "pins.txt").write_text("psutil==7.2.2\n")
    files = [p.resolve() for p in environment.requirement_files(tmp_path / "top.txt")]
    assert files == [(tmp_path / n).resolve() for n in ("top.txt", "sub/mid.txt", "sub/leaf.txt", "pins.txt")]
    before = environment.requirements_digest(tmp_path / "top.txt")
    (tmp_path / "pins.txt").write_text("psutil==7.2.1\n")  # a constraint two levels down
    assert environment.requirements_digest(tmp_path / "top.txt") != before


def test_a_missing_include_changes_the_stamp_too(reqs):
    before = environment.requirements_digest(reqs / "requirements-test.txt")
    (reqs / "requirements.txt").unlink()
    assert environment.requirements_digest(reqs / "requirements-test.txt") != before  # and pip will name the file


def test_the_test_requirements_do_not_pull_the_conversion_tools():
    files = [p.name for p in environment.requirement_files(ROOT / "requirements-test.txt")]
    assert files == ["requirements-test.txt", "requirements.txt", "requirements-bench.txt"]  # no convert


@pytest.mark.parametrize(("pytest_args", "convert"), [
    ([], True),
    (["-k", "policy"], True),
    (["-m", "not slow"], False),
    (["-mnot slow"], False),
    (["-m=not slow"], False),
    (["-q", "-m", "not slow and not browser", "tests/models/test_policy.py"], False),
    (["-m", "browser and not slow"], False),
    (["-m", "not (slow or browser)"], False),
    (["-m", "slow"], True),
    (["-m", "not browser"], True),
    (["-m", "slow or not slow"], True),
    (["-m", "not slow", "-m", "slow"], True),  # the last -m wins, as in pytest
    (["-m", "not slow or"], True),  # not understood: install, pytest will say what is wrong
])
def test_conversion_tools_only_when_slow_tests_can_run(pytest_args, convert):
    assert environment.selects_slow_tests(pytest_args) is convert
    assert ("requirements-convert.txt" in environment.setup_files(pytest_args)) is convert


def test_the_app_alone_installs_only_its_requirements():
    assert environment.setup_files(None) == ["requirements.txt"]
    assert environment.setup_files(["-m", "not slow"]) == ["requirements.txt", "requirements-test.txt"]


# The parent as launch.py runs it on Windows: it re-runs itself in .venv and waits. Here the child is
# launch.py itself running pytest on a test that waits; Ctrl-C (SIGINT to the whole process group, as a
# terminal or the Windows console sends it) must stop pytest, and the parents must pass its exit code on.
PARENT = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from app import environment
environment.reexec_in_venv(Path(sys.executable), ["--test", "-q", "-s", "-p", "no:cacheprovider", sys.argv[2]], 0.0,
                      windows=True)
"""
WAITING_TEST = """
import time

def test_waits_for_ctrl_c():
    print("ready", flush=True)
    time.sleep(120)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT to a POSIX process group")
def test_ctrl_c_in_the_child_leaves_no_traceback_and_passes_its_exit_code(tmp_path):
    test_file = tmp_path / "test_wait.py"
    test_file.write_text(WAITING_TEST)
    env = {k: v for k, v in os.environ.items() if k != environment.INSIDE_FLAG}
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(ROOT), str(test_file)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert parent.stdout.readline().strip() == "ready", parent.stderr.read()
        os.killpg(parent.pid, signal.SIGINT)
        out, err = parent.communicate(timeout=60)
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "KeyboardInterrupt" in out  # pytest's own summary of the interrupted run
    assert parent.returncode == pytest.ExitCode.INTERRUPTED  # pytest's code, through both parents


def test_the_benchmark_s_chart_tools_failing_to_install_do_not_stop_the_benchmark(tmp_path, monkeypatch, capsys):
    # Offline, or an index without matplotlib: --bench (and the page's Benchmark tab) measures anyway and the
    # report says it has no chart; the app's own requirements failing would still stop the set-up.
    (tmp_path / "requirements.txt").write_text("")
    (tmp_path / "requirements-bench.txt").write_text("phi3pc-no-such-package-anywhere==0.0.1\n")
    monkeypatch.setattr(environment, "ROOT", tmp_path)
    monkeypatch.setattr(environment, "VENV", tmp_path / "venv")
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / ".stamp-requirements.txt.sha256").write_text(
        environment.requirements_digest(tmp_path / "requirements.txt"))  # the app's are up to date
    environment.ensure_environment(None, bench=True)
    out = capsys.readouterr().out
    assert "requirements-bench.txt could not be installed" in out and "runs without its chart" in out
    assert not (tmp_path / "venv" / ".stamp-requirements-bench.txt.sha256").exists()  # tried again next time
