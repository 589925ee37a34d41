"""Engine paths that cannot run on this machine, tested at their boundary: the exact configuration,
provider options and arguments they build. And the honest failure when one is tried here anyway."""

from __future__ import annotations

import pytest

from models.engines import EngineSpec, Sampling, load
from models.engines.context import Budget, fit_messages
from models.engines.npu_library import chat_ids, generate_arguments, load_arguments
from models.engines.onnxruntime_genai import cpu_threads_overlay, genai_config, luid_option, provider_config
from models.engines.openvino_genai import pipeline_config
from models.errors import EngineLoadError, PromptTooLong
from models.policy import Availability, Preference, rank
from tests.support.recorded import CATALOG, profile


def test_the_npus_compiled_prompt_limit_is_what_trimming_enforces():
    # On the NPU MAX_PROMPT_LEN is fixed at compile time and a longer prompt throws ("may only process
    # prompts ... up to N tokens"): the budget must stop at it, not only at the window.
    config = pipeline_config("NPU", 4096, None)
    budget = Budget(config["MAX_PROMPT_LEN"] + config["MIN_RESPONSE_LEN"], prompt_limit=config["MAX_PROMPT_LEN"])
    assert budget.window == 4096
    assert budget.prompt_max(16) == config["MAX_PROMPT_LEN"]  # a short answer does not lift the prompt limit
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": "word " * 200} for i in range(41)]
    kept, notice, used = fit_messages(turns, lambda ms: sum(len(m["content"].split()) for m in ms), budget, 16)
    assert used <= config["MAX_PROMPT_LEN"] and notice
    with pytest.raises(PromptTooLong, match=f"at most {config['MAX_PROMPT_LEN']} prompt tokens"):
        fit_messages([{"role": "user", "content": "word " * 5000}],
                     lambda ms: sum(len(m["content"].split()) for m in ms), budget, 16)


def test_every_system_message_is_counted_and_kept_where_it_stands():
    """Issue 20: only the first system message was counted (a 214-token prompt counted as 60, so it could overflow
    the window unchecked) and trimming dropped the later ones silently."""
    def words(ms):
        return sum(len(m["content"].split()) for m in ms)

    chat = [{"role": "system", "content": "be brief " * 10}, {"role": "user", "content": "hi " * 30},
            {"role": "assistant", "content": "hello " * 30}, {"role": "system", "content": "context " * 100},
            {"role": "user", "content": "and? " * 5}]
    kept, notice, used = fit_messages(chat, words, Budget(4096), 64)
    assert used == words(chat) == 185 and kept == chat and notice is None
    kept, notice, used = fit_messages(chat, words, Budget(200), 64)  # 136 for the prompt: the first turns go
    assert [m["role"] for m in kept] == ["system", "system", "user"] and used == 125 and "2 oldest" in notice
    assert kept[1]["content"].startswith("context")
    with pytest.raises(PromptTooLong):
        fit_messages(chat, words, Budget(150), 64)  # the system messages alone do not fit


def test_npu_prompt_and_response_lengths_follow_the_window():
    small = pipeline_config("NPU", 1152, None, min_response_len=512)
    assert small["MAX_PROMPT_LEN"] + small["MIN_RESPONSE_LEN"] == 1152 and small["MIN_RESPONSE_LEN"] == 288


def test_the_cpu_runs_in_f32_and_gpus_keep_their_default():
    # the fp16 IR answers nonsense in bf16 on BF16 CPUs (the engine tests check its answers); GPUs keep f16
    assert pipeline_config("CPU", 4096, None)["INFERENCE_PRECISION_HINT"] == "f32"
    assert "INFERENCE_PRECISION_HINT" not in pipeline_config("GPU.1", 4096, None)


def test_directml_provider_options_for_the_adapter_the_policy_chose():
    desk = profile("core-ultra-9-285k-desktop-rtx4070-windows")
    first = rank(desk, CATALOG, Preference(), Availability()).candidates[0]
    assert first.device_id == "dml:0:58785"  # the RTX 4070's LUID, High:Low
    # ONNX Runtime GenAI normalises "dml" to "DML" when appending, but files options under the name as
    # given: options under "dml" land in a second, unused entry (src/config.cpp SetProviderOption).
    assert provider_config(first.device_id) == ("DML", {"luid": "0:58785"})
    assert provider_config("dml:1") == ("DML", {"device_index": "1"})
    assert provider_config("cpu") == (None, {})
    with pytest.raises(EngineLoadError, match="CPU or DirectML"):
        provider_config("NPU")


def test_a_luid_low_part_past_2_31_is_passed_as_its_signed_value():
    # DXGI's LowPart is a DWORD; the DML options parse both halves with std::stol (signed 32-bit on Windows)
    assert luid_option("0:3221225472") == "0:-1073741824"
    assert luid_option("1:58785") == "1:58785"


def test_directml_on_linux_fails_with_a_clear_message_that_rules_out_the_device(phi3_models):
    with pytest.raises(EngineLoadError, match="could not load .* on dml:0") as err:
        load(EngineSpec(path=str(phi3_models.exports["onnx-int4-dml"]), engine="onnxruntime-genai",
                        device="dml:0", label="dml build"))
    assert err.value.scope == "device"  # every DirectML build would fail the same way: skip them all


def test_openvino_npu_and_gpu_are_refused_here_with_the_reason(phi3_models):
    for device in ("NPU", "GPU.0"):
        with pytest.raises(EngineLoadError, match=f"on {device}.*its driver is missing") as err:
            load(EngineSpec(path=str(phi3_models.exports["openvino-npu"]), engine="openvino-genai",
                            device=device, label="npu build"))
        assert err.value.scope == "device"


def test_the_npu_library_gets_token_ids_from_transformers_5(phi3_models):
    # transformers 5 returns a BatchEncoding from apply_chat_template(..., return_tensors="pt") unless
    # return_dict=False: the adapter would then fail on `.shape`.
    from transformers import AutoTokenizer

    ids = chat_ids(AutoTokenizer.from_pretrained(phi3_models.hf), [{"role": "user", "content": "Hi"}])
    assert ids.shape[0] == 1 and ids.shape[-1] > 3


def test_npu_library_arguments_are_the_cookbooks():
    path, kwargs = load_arguments(EngineSpec(path="microsoft/Phi-3-mini-4k-instruct", engine="npu-acceleration-library",
                                             device="NPU", label="x", precision="int4"))
    assert path == "microsoft/Phi-3-mini-4k-instruct"
    assert kwargs == {"use_cache": True, "dtype": "int4", "attn_implementation": "sdpa"}
    assert generate_arguments(Sampling(max_new_tokens=64))["do_sample"] is False


def test_npu_library_is_refused_here_with_the_reason():
    with pytest.raises(EngineLoadError, match="not installed"):
        load(EngineSpec(path="x", engine="npu-acceleration-library", device="NPU", label="x"))


def test_onnx_runtime_on_the_cpu_gets_a_thread_per_core_unless_the_model_sets_its_own(tmp_path):
    import json

    def config(session: dict) -> dict:
        return {"model": {"decoder": {"session_options": session}}}

    written = config({"log_id": "onnxruntime-genai", "provider_options": []})  # what the model builder writes
    (tmp_path / "genai_config.json").write_text(json.dumps(written))
    assert genai_config(str(tmp_path)) == written
    assert json.loads(cpu_threads_overlay(written, 8)) == {
        "model": {"decoder": {"session_options": {"intra_op_num_threads": 8}}}}
    assert cpu_threads_overlay(written, 1) is None  # one core: nothing to set
    assert cpu_threads_overlay(config({"intra_op_num_threads": 3}), 8) is None  # the model's own choice stays
    assert genai_config(str(tmp_path / "missing")) == {}  # the loader names an unreadable config
    assert cpu_threads_overlay({}, 8) is None
