"""Start-up as a whole: rank, fetch, load, and the fallback when the first choice cannot load."""

from __future__ import annotations

import subprocess
import sys

import pytest

from capabilities import MachineProfile
from models.errors import NoUsableArtifact
from models.policy import Preference
from models.settings import load_settings
from models.startup import local_artifact, start
from tests import machines
from tests.conftest import ROOT, app_env


def test_a_device_that_fails_to_load_falls_back_and_says_so(embedded_gguf, app_home, catalog):
    # A recorded Lunar Lake on battery ranks its NPU, then its iGPU, then the CPU. This machine has
    # neither, so real OpenVINO refuses the first two and the CPU runs: the fallback chain for real.
    lunar = MachineProfile.from_json(
        (machines.MACHINES / "core-ultra-7-258v-lunar-lake-windows" / "expected.json").read_text())
    local = local_artifact(str(embedded_gguf))
    steps = []
    loaded = start(lunar, catalog + (local,), load_settings(offline=True, home=app_home),
                   Preference(model=local.id), log=lambda *a: steps.append(a))
    assert [c.device_id for c in loaded.ranking.candidates] == ["NPU", "GPU.0", "CPU"]
    assert loaded.candidate.device_id == "CPU"
    assert [s[0] for s in steps].count("fallback") == 2
    assert any("could not start" in n and "NPU" in n for n in loaded.notices)
    assert any(n.startswith("Running ") and "instead of the first choice" in n for n in loaded.notices)
    reply = loaded.engine.stream([{"role": "user", "content": "What is the capital of France?"}])
    assert "Paris" in reply.text()


def test_nothing_usable_is_a_clear_error(app_home, catalog):
    lunar = MachineProfile.from_json(
        (machines.MACHINES / "this-machine-linux-epyc-vm" / "expected.json").read_text())
    with pytest.raises(NoUsableArtifact, match="no NPU on this machine"):
        start(lunar, catalog, load_settings(offline=True, home=app_home), Preference(device="npu"))


def test_impossible_device_and_unknown_model_on_the_command_line(embedded_gguf, app_home):
    def run(*args):
        return subprocess.run([sys.executable, str(ROOT / "launch.py"), *args, "--ask", "hi", "--offline"],
                              capture_output=True, text=True, env=app_env(app_home), cwd=ROOT)

    npu = run("--device", "npu")
    assert npu.returncode == 1 and "nothing in the catalog can run here" in npu.stderr
    assert "no Intel NPU found" in npu.stderr
    unknown = run("--model", "phi-9-ultra")
    assert unknown.returncode == 1 and "neither a catalog id" in unknown.stderr
