"""The default install stays light, and installs on every platform it claims: pip resolves requirements.txt
for real against the package index (a dry run, binary wheels only) for 64-bit Windows on x64 and on Arm,
x86_64 Linux and Apple-silicon macOS, with the environment markers evaluated for that platform.

`pip install --platform X` picks X's wheels but evaluates environment markers, its own file's and every
dependency's, for the machine it runs on (a Linux host would pull torch's `platform_system == "Linux"`
CUDA wheels into a Windows resolve), and checks Requires-Python against the running interpreter. So pip runs
here with its vendored `packaging.markers.default_environment` and its resolver's Python version set to the
target's: the same resolver, told the truth about the target.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

# pip resolves against PyPI for five platforms: about 40 s
pytestmark = pytest.mark.slow

MACHINES = {
    "win_amd64": {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt", "platform_machine": "AMD64"},
    "win_arm64": {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt", "platform_machine": "ARM64"},
    "linux_x86_64": {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
                     "platform_machine": "x86_64"},
    "macosx_14_0_arm64": {"sys_platform": "darwin", "platform_system": "Darwin", "os_name": "posix",
                          "platform_machine": "arm64"},
}
# pip expands macOS and the legacy manylinux2014 tag to the older ones they accept, not manylinux_2_X:
# name the glibc 2.17-2.35 tags (Ubuntu 22.04 has 2.35) explicitly.
PLATFORM_TAGS = {"linux_x86_64": [f"manylinux_2_{m}_x86_64" for m in range(35, 16, -1)] + ["manylinux2014_x86_64"]}

BOOT = """
import json, runpy, sys
target = json.loads(sys.argv.pop(1))
import pip._vendor.packaging.markers as markers
host = markers.default_environment
markers.default_environment = lambda: {**host(), **target}
from pip._internal.resolution.resolvelib import candidates
version = tuple(int(p) for p in target["python_full_version"].split("."))
init = candidates.RequiresPythonCandidate.__init__
candidates.RequiresPythonCandidate.__init__ = lambda self, py_version_info: init(self, py_version_info or version)
sys.argv[0] = "pip"
runpy.run_module("pip", run_name="__main__", alter_sys=True)
"""


def environment(machine: str, python: str) -> dict[str, str]:
    return {**default_environment(), **MACHINES[machine], "python_version": python,
            "python_full_version": f"{python}.0", "implementation_name": "cpython",
            "platform_python_implementation": "CPython"}


def wanted(machine: str, python: str) -> set[str]:
    """The distributions requirements.txt names for this platform, by its markers alone."""
    names = set()
    for raw in (ROOT / "requirements.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        r = Requirement(line)
        if r.marker is None or r.marker.evaluate(environment(machine, python)):
            names.add(canonicalize_name(r.name))
    return names


def resolve(machine: str, python: str, tmp_path: Path) -> dict[str, str]:
    """What `pip install -r requirements.txt` would install on that platform: {name: version}."""
    report = tmp_path / "report.json"
    tags = [arg for tag in PLATFORM_TAGS.get(machine, [machine]) for arg in ("--platform", tag)]
    done = subprocess.run([sys.executable, "-c", BOOT, json.dumps(environment(machine, python)),
                           "install", "--dry-run", "--ignore-installed", "-q", "--disable-pip-version-check",
                           "--only-binary=:all:", *tags, "--python-version", python, "--implementation", "cp",
                           "--target", str(tmp_path / "target"), "--report", str(report),
                           "-r", str(ROOT / "requirements.txt")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
            for item in json.loads(report.read_text())["install"]}


ENGINES = {"openvino-genai", "onnxruntime-genai", "onnxruntime-genai-directml", "onnxruntime-directml",
           "intel-npu-acceleration-library", "neural-compressor", "torch"}
CUDA = "nvidia-"


@pytest.mark.parametrize(("machine", "python", "engines"), [
    ("linux_x86_64", "3.11", {"openvino-genai", "onnxruntime-genai"}),
    ("macosx_14_0_arm64", "3.12", {"openvino-genai", "onnxruntime-genai"}),
    # Windows on Arm (Snapdragon): no OpenVINO or DirectML wheels; ONNX Runtime GenAI has a win_arm64 one
    ("win_arm64", "3.12", {"onnxruntime-genai"}),
    # x64 Windows: DirectML, and the NPU library with the torch it can reload its cache with
    ("win_amd64", "3.12", {"openvino-genai", "onnxruntime-genai-directml", "onnxruntime-directml",
                           "intel-npu-acceleration-library", "neural-compressor", "torch"}),
    # the NPU library has no wheel for Python 3.13: the rest still installs
    ("win_amd64", "3.13", {"openvino-genai", "onnxruntime-genai-directml", "onnxruntime-directml"}),
])
def test_the_install_resolves_on_each_platform(machine, python, engines, tmp_path):
    names = resolve(machine, python, tmp_path)
    assert {"gradio", "huggingface-hub", "psutil", "py-cpuinfo"} <= set(names)
    assert ENGINES & set(names) == engines
    assert not [n for n in names if n.startswith(CUDA)]  # no CUDA wheels anywhere: the app never needs them
    if "onnxruntime-genai-directml" in names:
        assert names["onnxruntime-genai-directml"] == "0.13.1" and names["onnxruntime-directml"] == "1.24.4"
    if "intel-npu-acceleration-library" in names:
        assert names["intel-npu-acceleration-library"] == "1.4.0"
        assert names["neural-compressor"].startswith("2.")
        assert tuple(int(p) for p in names["torch"].split(".")[:2]) < (2, 6)  # torch.load weights_only default


@pytest.mark.parametrize(("machine", "python"), [
    ("linux_x86_64", "3.11"), ("macosx_14_0_arm64", "3.12"), ("win_arm64", "3.12"), ("win_amd64", "3.13"),
])
def test_the_default_install_pulls_no_pytorch(machine, python):
    assert not {"torch", "torchvision", "intel-npu-acceleration-library"} & wanted(machine, python)


def test_the_npu_library_line_and_its_torch_cap_go_together():
    for python in ("3.10", "3.11", "3.12"):
        assert {"intel-npu-acceleration-library", "neural-compressor", "torch"} <= wanted("win_amd64", python)
    assert "onnxruntime-genai" not in wanted("win_amd64", "3.12")  # the DirectML build replaces it there
