"""Start-up as a whole: rank, fetch, load, and the fallback when the first choice cannot load."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from capabilities import MachineProfile
from models import policy
from models.engines import Sampling
from models.errors import NoUsableArtifact
from models.policy import Preference
from models.settings import load_settings
from models.startup import local_artifact, start
from tests.conftest import ROOT, app_env
from tests.support import machines


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


def _only_cpu_here():
    return MachineProfile.from_json((machines.MACHINES / "this-machine-linux-epyc-vm" / "expected.json").read_text())


def test_a_broken_artifact_skips_only_itself_and_the_embedded_model_still_starts(phi3_models, embedded_gguf,
                                                                                  app_home, catalog, tmp_path):
    # A cached model that cannot load (here: a truncated IR) must not rule out every other model on
    # the same device: the embedded model on the same CPU still starts.
    broken = tmp_path / "broken-ir"
    shutil.copytree(phi3_models.exports["openvino-int4"], broken)
    weights = broken / "openvino_model.bin"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])
    local = local_artifact(str(broken))
    loaded = start(_only_cpu_here(), catalog + (local,), load_settings(offline=True, home=app_home), Preference())
    assert loaded.ranking.candidates[0].artifact.id == local.id  # it was the first choice
    assert loaded.artifact.embedded and loaded.candidate.device_id == "CPU"
    assert any("broken-ir" in n and "could not start" in n for n in loaded.notices)
    assert "Paris" in loaded.engine.stream([{"role": "user", "content": "What is the capital of France?"}]).text()


def test_a_device_that_compiles_but_fails_its_first_inference_falls_back(embedded_gguf, app_home, catalog,
                                                                          monkeypatch):
    from models.engines.openvino_genai import OpenVinoGenAIEngine

    real_warm_up = OpenVinoGenAIEngine._warm_up
    calls = []

    def first_inference_fails(self):
        calls.append(self.spec.path)
        if len(calls) == 1:
            raise RuntimeError("ZE_RESULT_ERROR_DEVICE_LOST in the first inference")
        real_warm_up(self)

    monkeypatch.setattr(OpenVinoGenAIEngine, "_warm_up", first_inference_fails)
    local = local_artifact(str(embedded_gguf))
    one_at_a_time = load_settings(offline=True, home=app_home, parallel=1)  # the single-request engine
    loaded = start(_only_cpu_here(), catalog + (local,), one_at_a_time, Preference())
    assert len(calls) == 2 and loaded.artifact.embedded
    assert any("DEVICE_LOST" in n and "could not start" in n for n in loaded.notices)


def test_a_damaged_converted_model_is_reported_and_skipped(embedded_gguf, app_home, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(app_home / "embedded", home / "embedded")
    damaged = home / "converted" / "phi3-openvino-int4"
    damaged.mkdir(parents=True)
    (damaged / ".complete").write_text("microsoft/Phi-3-mini-4k-instruct\nopenvino-int4\n")
    (damaged / "openvino_model.xml").write_text("<net/>")  # the weights and tokenizer are gone
    done = subprocess.run([sys.executable, str(ROOT / "launch.py"), "--explain", "--offline"], capture_output=True,
                          text=True, env=app_env(home), cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "the converted model" in done.stderr and "damaged and was skipped" in done.stderr
    assert "openvino_model.bin" in done.stderr  # what is missing
    assert "smollm2-135m-embedded" in done.stdout  # the ranking is there


def _with_available_memory(available: int) -> MachineProfile:
    data = json.loads((machines.MACHINES / "this-machine-linux-epyc-vm" / "expected.json").read_text())
    data["memory"]["available_bytes"] = available
    return MachineProfile.from_json(json.dumps(data))


def test_when_the_kv_cache_of_every_slot_does_not_fit_fewer_answers_run_at_once_and_start_up_says_so(
        embedded_gguf, app_home, catalog):
    embedded = next(a for a in catalog if a.embedded)
    per_slot = embedded.kv_bytes_per_token * embedded.context_length
    weights = policy.weights_bytes(embedded)
    # Memory for the weights and two full windows (with the policy's headroom), not for the default four.
    two = (weights + 2 * per_slot) * (100 + policy.HEADROOM_PERCENT) // 100
    steps = []
    loaded = start(_with_available_memory(two + per_slot // 2), catalog, load_settings(offline=True, home=app_home),
                   Preference(model=embedded.id), log=lambda *a: steps.append(a))
    try:
        assert loaded.candidate.context_length == embedded.context_length  # the window is not what gave way
        assert loaded.engine.max_parallel == 2
        assert any(s[0] == "load" and "2 answers at once" in s[2] for s in steps)
        (said,) = [n for n in loaded.notices if "at once instead of 4" in n]
        assert said.startswith(f"{embedded.name}: 2 answers at once instead of 4") and "KV cache" in said
        replies = [loaded.engine.stream([{"role": "user", "content": q}], Sampling(max_new_tokens=24))
                   for q in ("What is the capital of France?", "What is the capital of Italy?")]
        assert "Paris" in replies[0].text() and "Rome" in replies[1].text()
    finally:
        loaded.engine.close()
    roomy = start(_with_available_memory(16 * 2**30), catalog, load_settings(offline=True, home=app_home),
                  Preference(model=embedded.id))
    try:
        assert roomy.engine.max_parallel == 4 and not any("at once instead" in n for n in roomy.notices)
    finally:
        roomy.engine.close()
