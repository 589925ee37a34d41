"""The command line when something is wrong: one line that says what happened and what to do, a
non-zero exit, never a traceback. Full and read-only disks are real filesystems (tmpfs, mounted as root)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, app_env


def run_launch(*args, home: Path | None = None, env: dict | None = None, timeout: int = 300):
    return subprocess.run([sys.executable, str(ROOT / "launch.py"), *args], capture_output=True, text=True,
                          env={**app_env(home), **(env or {})}, timeout=timeout, cwd=ROOT)


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    return errors[0]


@pytest.mark.parametrize(("text", "says"), [
    ("{not json", "not valid JSON"),
    ("", "empty"),
    ("[1, 2]", "object"),
    ('{"schema_version": 1, "system": {}}', "system.os is missing"),
])
def test_a_malformed_probe_file_is_one_line_and_exit_2(tmp_path, text, says):
    bad = tmp_path / "pc.json"
    bad.write_text(text)
    done = run_launch("--explain", "--probe-file", str(bad))
    assert done.returncode == 2
    line = one_line_error(done)
    assert str(bad) in line or "pc.json" in line
    assert says.lower() in line.lower()


def test_a_string_false_for_on_battery_is_refused_not_read_as_battery(tmp_path):
    from tests.support.machines import MACHINES

    data = (MACHINES / "this-machine-linux-epyc-vm" / "expected.json").read_text()
    bad = tmp_path / "pc.json"
    bad.write_text(data.replace('"on_battery": false', '"on_battery": "false"').replace(
        '"on_battery": null', '"on_battery": "false"'))
    done = run_launch("--explain", "--probe-file", str(bad))
    assert done.returncode == 2 and "on_battery" in one_line_error(done)


def test_a_port_taken_between_the_check_and_the_bind_is_one_line(embedded_gguf, app_home, monkeypatch, capsys):
    from app import cli
    from app.arguments import build_parser
    from webui import server

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        monkeypatch.setattr(server, "free_port", lambda host, wanted: port)  # the check said free; then it was taken
        args = build_parser().parse_args(["--offline", "--no-browser", "--port", str(port)])
        assert cli.run(args) == 1
    err = capsys.readouterr().err
    assert f"error: port {port} on 127.0.0.1 could not be opened" in err and "--port" in err


def test_answers_piped_to_a_file_never_raise_on_characters_the_console_lacks():
    code = "from app.console import safe_console; safe_console(); print('Paris \u2192 caf\u00e9 \u2713')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=ROOT,
                          env=dict(os.environ, PYTHONIOENCODING="cp1252"))  # a Windows pipe's code page
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert done.stdout.decode("utf-8").strip() == "Paris \u2192 caf\u00e9 \u2713"


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs: needs root (CI runs as root)")


@contextlib.contextmanager
def tmpfs(where: Path, size: str, readonly: bool = False):
    where.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if readonly else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], check=True, capture_output=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@needs_root
def test_a_read_only_app_cache_is_one_line_and_a_non_zero_exit(tmp_path):
    with tmpfs(tmp_path / "ro-home", "1M", readonly=True) as home:
        done = run_launch("--ask", "hi", home=home)
    assert done.returncode == 1
    line = one_line_error(done)
    assert "not writable" in line and "PHI3PC_HOME" in line


@needs_root
def test_a_full_disk_while_fetching_the_embedded_model_is_one_line(tmp_path):
    with tmpfs(tmp_path / "full-home", "2M") as home:
        done = run_launch("--ask", "hi", home=home)
    assert done.returncode == 1
    line = one_line_error(done)
    assert "disk is full" in line and "Free some space" in line


@needs_root
def test_a_full_disk_while_writing_the_compiled_model_cache_still_answers(embedded_gguf, tmp_path):
    with tmpfs(tmp_path / "small-home", "100M") as home:  # room for the 93 MB model, not for its IR copy
        target = home / "embedded" / embedded_gguf.parent.name
        target.mkdir(parents=True)
        shutil.copy2(embedded_gguf, target / embedded_gguf.name)
        done = run_launch("--ask", "What is the capital of France?", "--offline", home=home)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Paris" in done.stdout
    assert "could not write its compiled-model cache" in done.stderr


def test_an_app_home_behind_a_file_is_one_line_naming_the_folder(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    for home in (blocker, blocker / "phi3"):
        done = run_launch("--offline", "--ask", "hi", env={"PHI3PC_HOME": str(home)})
        line = one_line_error(done)
        assert done.returncode == 1 and f"{blocker} is a file, not a folder" in line and "PHI3PC_HOME" in line, line
        assert "not cached" not in done.stderr and "probe" not in done.stdout  # said before anything else


@needs_root
def test_an_app_home_that_cannot_be_made_is_one_line(tmp_path):
    with tmpfs(tmp_path / "ro", "1m", readonly=True) as where:
        line = one_line_error(run_launch("--offline", "--ask", "hi", env={"PHI3PC_HOME": str(where / "home")}))
    assert "cannot be made (Read-only file system)" in line and str(where / "home") in line, line
