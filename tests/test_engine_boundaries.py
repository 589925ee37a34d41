"""Engine paths that cannot run on this machine, tested at their boundary: the exact configuration,
provider options and arguments they build. And the honest failure when one is tried here anyway."""

from __future__ import annotations

import pytest

from models.engines import EngineSpec, Sampling, load
from models.engines.npu_library import generate_arguments, load_arguments
from models.engines.onnxruntime_genai import provider_config
from models.engines.openvino_genai import pipeline_config
from models.errors import EngineLoadError
from models.policy import Availability, Preference, rank
from tests.test_policy import CATALOG, profile


@pytest.mark.parametrize(
    ("device", "expected"),
    [
        ("CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32", "CACHE_DIR": "/c"}),
        ("GPU.0", {"PERFORMANCE_HINT": "LATENCY", "CACHE_DIR": "/c"}),
        ("GPU.1", {"PERFORMANCE_HINT": "LATENCY", "CACHE_DIR": "/c"}),
        ("NPU", {"MAX_PROMPT_LEN": 3584, "MIN_RESPONSE_LEN": 512, "GENERATE_HINT": "BEST_PERF", "CACHE_DIR": "/c"}),
    ],
)
def test_openvino_configuration_per_device(device, expected):
    assert pipeline_config(device, 4096, "/c") == expected


def test_npu_prompt_and_response_lengths_follow_the_window():
    small = pipeline_config("NPU", 1152, None, min_response_len=512)
    assert small == {"MAX_PROMPT_LEN": 864, "MIN_RESPONSE_LEN": 288, "GENERATE_HINT": "BEST_PERF"}


def test_directml_provider_options_for_the_adapter_the_policy_chose():
    desk = profile("core-ultra-9-285k-desktop-rtx4070-windows")
    first = rank(desk, CATALOG, Preference(), Availability()).candidates[0]
    assert first.device_id == "dml:0:58785"  # the RTX 4070's LUID, High:Low
    assert provider_config(first.device_id) == ("dml", {"luid": "0:58785"})
    assert provider_config("dml:1") == ("dml", {"device_index": "1"})
    assert provider_config("cpu") == (None, {})
    with pytest.raises(EngineLoadError, match="CPU or DirectML"):
        provider_config("NPU")


def test_directml_on_linux_fails_with_a_clear_message(phi3_models):
    with pytest.raises(EngineLoadError, match="could not load .* on dml:0"):
        load(EngineSpec(path=str(phi3_models.exports["onnx-int4-dml"]), engine="onnxruntime-genai",
                        device="dml:0", label="dml build"))


def test_openvino_npu_and_gpu_are_refused_here_with_the_reason(phi3_models):
    for device in ("NPU", "GPU.0"):
        with pytest.raises(EngineLoadError, match=f"on {device}"):
            load(EngineSpec(path=str(phi3_models.exports["openvino-npu"]), engine="openvino-genai",
                            device=device, label="npu build"))


def test_npu_library_arguments_are_the_cookbooks():
    path, kwargs = load_arguments(EngineSpec(path="microsoft/Phi-3-mini-4k-instruct", engine="npu-acceleration-library",
                                             device="NPU", label="x", precision="int4"))
    assert path == "microsoft/Phi-3-mini-4k-instruct"
    assert kwargs == {"use_cache": True, "dtype": "int4", "attn_implementation": "sdpa"}
    assert generate_arguments(Sampling(max_new_tokens=64))["do_sample"] is False


def test_npu_library_is_refused_here_with_the_reason():
    with pytest.raises(EngineLoadError, match="not installed"):
        load(EngineSpec(path="x", engine="npu-acceleration-library", device="NPU", label="x"))
