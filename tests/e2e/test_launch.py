"""launch.py as a user runs it: flags, the probe as JSON, one answer in the terminal."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import cpuinfo
import pytest

from app import environment
from app.arguments import build_parser
from tests.conftest import ROOT, app_env
from webui.server import free_port


def run_launch(*args, home: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "launch.py"), *args], capture_output=True, text=True,
                          env=app_env(home), timeout=timeout, cwd=ROOT)


def test_the_readme_documents_every_flag_and_only_flags_that_exist():
    import re

    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Useful flags"):readme.index("`python launch.py --help` lists them all")]
    documented = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", table))
    parser = build_parser()
    real = {opt for action in parser._actions for opt in action.option_strings if opt.startswith("--")} - {"--help"}
    assert documented <= real, f"the README documents flags launch.py does not have: {documented - real}"
    assert real - documented <= {"--test"}, f"undocumented: {real - documented - {'--test'}}"  # --test: see above


def test_probe_prints_json_whose_cpu_matches_py_cpuinfo(monkeypatch):
    monkeypatch.setenv("PHI3PC_SETUP_SECONDS", "12.5")  # as after a fresh set-up: stdout stays pure JSON
    done = run_launch("--probe")
    assert done.returncode == 0, done.stderr
    profile = json.loads(done.stdout)
    assert profile["cpu"]["brand"] == cpuinfo.get_cpu_info()["brand_raw"]
    assert profile["schema_version"] == 1


def test_ask_streams_one_answer_and_prints_figures(embedded_gguf, app_home):
    done = run_launch("--ask", "What is the capital of France?", "--offline", home=app_home)
    assert done.returncode == 0, done.stderr
    assert "Paris" in done.stdout
    assert "tokens/s" in done.stdout and "first token" in done.stdout
    for step in ("probe", "pick", "fetch", "load"):
        assert f"] {step}" in done.stderr  # progress on stderr, the answer alone on stdout
    assert "not Phi-3" in done.stderr  # says plainly that this is the embedded fallback


def test_a_model_path_that_is_not_a_model_gets_a_clear_message(tmp_path):
    done = run_launch("--model", str(tmp_path), "--ask", "hi", "--offline")
    assert done.returncode == 1
    assert "holds no model this app knows" in done.stderr


def test_venv_python_path_per_platform():
    assert environment.venv_python(Path("v"), windows=True).parts[-2:] == ("Scripts", "python.exe")
    assert environment.venv_python(Path("v"), windows=False).parts[-2:] == ("bin", "python")


def test_a_taken_port_moves_to_the_next_free_one():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert free_port("127.0.0.1", taken) > taken


@pytest.mark.parametrize(("export", "engine"), [("openvino-int4", "OpenVINO GenAI"),
                                                ("onnx-int4-cpu", "ONNX Runtime GenAI"),
                                                ("gguf", "OpenVINO GenAI")])
def test_model_path_picks_the_engine_from_the_files(phi3_models, embedded_gguf, app_home, export, engine):
    path = embedded_gguf if export == "gguf" else phi3_models.exports[export]
    done = run_launch("--model", str(path), "--ask", "What is the capital of Germany?", "--offline", home=app_home)
    assert done.returncode == 0, done.stderr
    assert "Berlin" in done.stdout
    assert f"] load     {engine} on" in done.stderr


def test_convert_then_run_the_converted_model(phi3_models, embedded_gguf, app_home, tmp_path):
    import shutil

    home = tmp_path / "home"
    shutil.copytree(app_home / "embedded", home / "embedded")  # the fallback model, so nothing is fetched
    done = run_launch("--convert", str(phi3_models.hf), "--to", "onnx-int4-cpu", home=home, timeout=600)
    assert done.returncode == 0, done.stderr
    model_id = done.stdout.strip().splitlines()[-1]
    assert model_id == "converted:hf-onnx-int4-cpu"
    assert "onnxruntime_genai.models.builder" in done.stderr  # the builder ran, for real
    explain = run_launch("--explain", "--offline", home=home)
    assert model_id in explain.stdout  # it joined the catalog
    asked = run_launch("--model", model_id, "--ask", "What is the capital of Japan?", "--offline", home=home)
    assert asked.returncode == 0, asked.stderr
    assert "Tokyo" in asked.stdout and "ONNX Runtime GenAI" in asked.stderr


def test_convert_needs_a_target():
    done = run_launch("--convert", "microsoft/Phi-3-mini-4k-instruct")
    assert done.returncode == 2 and "go together" in done.stderr


def test_a_checkpoint_folder_is_pointed_to_conversion(phi3_models):
    done = run_launch("--model", str(phi3_models.hf), "--ask", "hi", "--offline")
    assert done.returncode == 1
    assert "is a Hugging Face checkpoint" in done.stderr and "--convert" in done.stderr
