"""The default install stays light, and the Windows install resolves: pip resolves requirements.txt
for real against the package index (no install), for this Linux machine and for 64-bit Windows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

WINDOWS = {**default_environment(), "sys_platform": "win32", "platform_system": "Windows", "os_name": "nt",
           "platform_machine": "AMD64", "python_version": "3.11", "python_full_version": "3.11.9"}


def requirement_lines() -> list[str]:
    return [line.split("#", 1)[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
            if line.split("#", 1)[0].strip()]


def resolve(lines: list[str], tmp_path: Path, *extra: str) -> set[str]:
    req = tmp_path / "req.txt"
    req.write_text("\n".join(lines) + "\n")
    report = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q",
                           "--disable-pip-version-check", "--report", str(report), *extra, "-r", str(req)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
            for item in json.loads(report.read_text())["install"]}


def test_the_default_install_on_linux_pulls_no_pytorch(tmp_path):
    names = resolve(requirement_lines(), tmp_path)
    assert "openvino-genai" in names and "gradio" in names and "onnxruntime-genai" in names
    assert not {"torch", "torchvision", "intel-npu-acceleration-library"} & set(names)


# The NPU library drags in torch and neural-compressor's own tree: resolving those for Windows takes
# minutes, so their wheels are only checked to exist for 64-bit Windows / CPython 3.11 (no deps).
HEAVY_ON_WINDOWS = {"intel-npu-acceleration-library", "neural-compressor"}


def test_the_windows_install_resolves_with_directml_and_the_npu_library(tmp_path):
    light, heavy = [], []
    for line in requirement_lines():
        r = Requirement(line)
        if r.marker is None or r.marker.evaluate(WINDOWS):
            r.marker = None
            (heavy if canonicalize_name(r.name) in HEAVY_ON_WINDOWS else light).append(str(r))
    windows = ("--only-binary=:all:", "--platform", "win_amd64", "--python-version", "3.11",
               "--implementation", "cp")
    names = resolve(light, tmp_path, *windows, "--target", str(tmp_path / "t"))
    assert names["onnxruntime-genai-directml"] == "0.13.1" and names["onnxruntime-directml"] == "1.24.4"
    assert "onnxruntime-genai" not in names and "torch" not in names
    (tmp_path / "h").mkdir()
    heavy_names = resolve(heavy, tmp_path / "h", *windows, "--no-deps", "--target", str(tmp_path / "t2"))
    assert heavy_names["intel-npu-acceleration-library"] == "1.4.0"
    assert heavy_names["neural-compressor"].startswith("2.")
