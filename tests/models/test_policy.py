"""The policy, table-driven over the recorded machines: first choice, next two, and the reasons."""

from __future__ import annotations

from dataclasses import replace

import pytest

from capabilities import MachineProfile, MemoryInfo, PowerInfo
from models.catalog import by_id
from models.policy import Availability, Preference, rank, required_bytes
from tests.support import machines
from tests.support.recorded import CATALOG, profile

ONLINE = Availability()


def top(ranking, n=3):
    return [(c.artifact.id, c.device_id) for c in ranking.candidates[:n]]


TABLE = [
    # machine, first three (artifact, device), text in the first choice's reasons.
    # The models are ranked by their quality tier (catalog.toml [[family]]): Phi-3.5-mini, Microsoft's
    # update of Phi-3-mini at the same 3.8B size, now leads each device where the fixed family bonus
    # used to put Phi-3-mini-4k first; on one device the builds of a model then order by bytes per token,
    # and the NPU builds trade a little accuracy off the NPU, the channel-wise (cw) one more than the
    # group-wise (gq) one (OpenVINO's NPU guide: channel-wise may lose accuracy).
    ("core-ultra-7-155h-windows",  # Phi-3.5-mini INT4, then its NPU builds: group-wise, channel-wise
     [("phi35-mini-ov-int4", "GPU.0"), ("phi35-mini-ov-int4-gq", "GPU.0"), ("phi35-mini-ov-int4-cw", "GPU.0")],
     "speed first (on AC power)"),
    # on battery: auto leans efficient, the NPU leads; Phi-3.5-mini first, its group-wise build before the
    # channel-wise one (accuracy first: the NPU guide's choice up to ~5B; the user did not ask for fastest)
    ("core-ultra-7-258v-lunar-lake-windows",
     [("phi35-mini-ov-int4-gq", "NPU"), ("phi35-mini-ov-int4-cw", "NPU"), ("phi3-mini-4k-ov-int4-cw", "NPU")],
     "the NPU wins on power"),
    ("core-ultra-9-285k-desktop-rtx4070-windows",  # DirectML INT4 AWQ on the discrete GPU, Phi-3.5 first
     [("phi35-mini-onnx-gpu-int4", "dml:0:58785"), ("phi3-mini-4k-onnx-dml-int4", "dml:0:58785"),
      ("phi3-mini-128k-onnx-dml-int4", "dml:0:58785")],
     "discrete GPU decodes from its own memory"),
    ("ryzen-ai-9-hx-370-strix-windows",  # the same order on the Radeon iGPU through DirectML
     [("phi35-mini-onnx-gpu-int4", "dml:0:54258"), ("phi3-mini-4k-onnx-dml-int4", "dml:0:54258"),
      ("phi3-mini-128k-onnx-dml-int4", "dml:0:54258")],
     "AMD Radeon(TM) 890M"),
    # Windows on Arm installs ONNX Runtime GenAI's CPU build (the DirectML build has no arm64 wheel, and
    # OpenVINO none for Windows on Arm): the Oryon CPU, Phi-3.5-mini first
    ("snapdragon-x-elite-windows-arm",
     [("phi35-mini-onnx-cpu-int4", "CPU"), ("phi3-mini-4k-onnx-cpu-int4", "CPU"),
      ("phi3-mini-128k-onnx-cpu-int4", "CPU")],
     "Microsoft's CPU build for non-Intel CPUs"),
    ("linux-core-ultra-5-125h-npu-driver-missing",  # as on the 155H: Phi-3.5-mini first on the iGPU
     [("phi35-mini-ov-int4", "GPU.0"), ("phi35-mini-ov-int4-gq", "GPU.0"), ("phi35-mini-ov-int4-cw", "GPU.0")],
     "efficiency first (on battery)"),
    # 3.2 GB free of 8 GB: no Phi-3 fits its full 4K window, but the KV cache grows with the chat, so
    # the minis run with a shorter one (the smaller channel-wise builds keep 2K, the others 1K) on the
    # iGPU (on battery: efficiency first); the embedded toy model is not the answer for this laptop.
    # Phi-3.5-mini's tier outweighs one halving of the window: its 1K INT4 and group-wise builds come
    # before Phi-3-mini-4k's 2K builds.
    ("laptop-8gb-core-i5-1135g7-windows",
     [("phi35-mini-ov-int4-cw", "GPU.0"), ("phi35-mini-ov-int4", "GPU.0"), ("phi35-mini-ov-int4-gq", "GPU.0")],
     "runs with a 2K-token window on this PC"),
    ("this-machine-linux-epyc-vm",  # an AMD CPU: Microsoft's ONNX CPU build of Phi-3.5-mini, then its IRs
     [("phi35-mini-onnx-cpu-int4", "CPU"), ("phi35-mini-ov-int4", "CPU"), ("phi35-mini-ov-int4-gq", "CPU")],
     "ONNX Runtime GenAI INT4 is Microsoft's CPU build for non-Intel CPUs"),
]


@pytest.mark.parametrize(("name", "first_three", "reason"), TABLE)
def test_first_choice_next_two_and_why(name, first_three, reason):
    r = rank(profile(name), CATALOG, Preference(), ONLINE)
    assert top(r, len(first_three)) == first_three
    assert any(reason in why for why in r.candidates[0].reasons), r.candidates[0].reasons
    embedded = [i for i, c in enumerate(r.candidates) if c.artifact.embedded]
    if profile(name).engine_version("openvino-genai"):
        assert embedded == [len(r.candidates) - 1]  # the embedded model is always the last resort
    else:
        assert not embedded  # no OpenVINO (Windows on Arm): not even the embedded model can run


def test_npu_driver_missing_is_the_reason_npu_builds_are_rejected():
    r = rank(profile("linux-core-ultra-5-125h-npu-driver-missing"), CATALOG, Preference(), ONLINE)
    npu = [x for x in r.rejected if x.device_kind == "npu" and x.artifact_id == "phi3-mini-4k-ov-int4-cw"]
    assert "intel_vpu driver is not loaded" in npu[0].reasons[0]


def test_npu_library_is_ranked_after_openvino_npu_and_says_why():
    r = rank(profile("core-ultra-7-155h-windows"), CATALOG, Preference(mode="efficient"), ONLINE)
    ids = [c.artifact.id for c in r.candidates]
    assert ids[0] == "phi35-mini-ov-int4-gq"  # the better model (quality tier), its more accurate NPU build
    lib = next(c for c in r.candidates if c.artifact.engine == "npu-acceleration-library")
    assert ids.index(lib.artifact.id) > ids.index("phi35-mini-ov-int4-cw")
    assert any("archived upstream" in why for why in lib.reasons)


def test_directml_is_rejected_off_windows_with_the_reason():
    r = rank(profile("this-machine-linux-epyc-vm"), CATALOG, Preference(), ONLINE)
    dml = next(x for x in r.rejected if x.artifact_id == "phi3-mini-4k-onnx-dml-int4")
    assert "DirectML needs Windows with a DirectX 12 GPU" in dml.reasons


def test_battery_versus_ac_on_the_same_machine():
    lunar = profile("core-ultra-7-258v-lunar-lake-windows")
    on_ac = replace(lunar, power=PowerInfo(on_battery=False, percent=55.0))
    assert rank(lunar, CATALOG, Preference(), ONLINE).candidates[0].device_id == "NPU"
    assert rank(on_ac, CATALOG, Preference(), ONLINE).candidates[0].device_id == "GPU.0"
    assert rank(on_ac, CATALOG, Preference(mode="efficient"), ONLINE).candidates[0].device_id == "NPU"


def _with_ram(p: MachineProfile, available: int, total: int | None = None) -> MachineProfile:
    return replace(p, memory=MemoryInfo(total_bytes=total or available * 2, available_bytes=available))


def test_memory_fit_exactly_at_the_limit_and_one_byte_under():
    art = by_id(CATALOG, "phi3-mini-4k-ov-int4")
    need = required_bytes(art)
    base = profile("this-machine-linux-epyc-vm")
    pref = Preference(model=art.id)
    full = rank(_with_ram(base, need), CATALOG, pref, ONLINE)
    assert full.candidates[0].context_length == 4096
    # one byte under the full window: the KV cache grows with the chat, so a 2K window still fits
    shorter = rank(_with_ram(base, need - 1), CATALOG, pref, ONLINE).candidates[0]
    assert shorter.context_length == 2048
    assert any("runs with a 2K-token window on this PC (4K needs 4.2 GB" in w for w in shorter.reasons)
    # one byte under even the smallest window: rejected, with both figures
    short = rank(_with_ram(base, required_bytes(art, 1024) - 1), CATALOG, pref, ONLINE)
    assert not short.candidates
    assert "needs 4.2 GB of RAM (with headroom), 2.9 GB available" in short.rejected[0].reasons[0]
    assert "even a 1K-token window needs 2.9 GB" in short.rejected[0].reasons[0]


def test_required_bytes_is_weights_plus_the_kv_cache_of_the_window():
    art = by_id(CATALOG, "phi3-mini-4k-ov-int4")
    assert art.kv_bytes_per_token == 32 * 2 * 32 * 96 * 2  # 384 KiB: layers x (K, V) x heads x head dim x FP16
    saved = required_bytes(art) - required_bytes(art, 2048)
    assert abs(saved - 2048 * art.kv_bytes_per_token * 1.1) <= 1


def test_the_8gb_laptop_gets_phi3_mini_int4_with_a_shorter_window_not_the_toy_model():
    # the recorded laptop (3.2 GB free of 8 GB) and the same laptop with 3.0 GB free
    laptop = profile("laptop-8gb-core-i5-1135g7-windows")
    for p in (laptop, _with_ram(laptop, 3_000_000_000, laptop.memory.total_bytes)):
        r = rank(p, CATALOG, Preference(), ONLINE)
        ids = [c.artifact.id for c in r.candidates]
        assert not r.candidates[0].artifact.embedded
        mini = next(c for c in r.candidates if c.artifact.id == "phi3-mini-4k-ov-int4")
        assert ids.index("phi3-mini-4k-ov-int4") < ids.index("smollm2-135m-embedded")
        assert mini.context_length < mini.artifact.context_length
        assert any(f"runs with a {mini.context_length // 1024}K-token window on this PC (4K needs" in w
                   for w in mini.reasons)
        assert r.to_dict()["candidates"][0]["context_length"] == r.candidates[0].context_length


def test_a_small_swapless_laptop_is_told_what_would_help():
    # 2.0 GB free of 4 GB: the full 4K window (4.2 GB) could never fit, but a 1K one (2.9 GB) could
    laptop = _with_ram(profile("laptop-8gb-core-i5-1135g7-windows"), 2_000_000_000, 4_000_000_000)
    r = rank(laptop, CATALOG, Preference(), ONLINE)
    why = next(x for x in r.rejected if x.artifact_id == "phi3-mini-4k-ov-int4" and x.device_kind == "cpu").reasons
    assert any("2.0 GB available" in w and "even a 1K-token window needs 2.9 GB" in w
               and "closing other apps may free enough" in w for w in why)
    medium = next(x for x in r.rejected if x.artifact_id == "phi3-medium-4k-ov-int4" and x.device_kind == "cpu")
    assert not any("closing other apps" in w for w in medium.reasons)  # 8.9 GB even at 1K: 4 GB cannot hold it


def test_discrete_gpu_memory_is_the_pool_for_a_discrete_gpu():
    desk = profile("core-ultra-9-285k-desktop-rtx4070-windows")
    small_vram = replace(desk, devices=tuple(
        replace(d, memory_bytes=2 * 1024**3) if d.id == "dxgi:0" else d for d in desk.devices))
    r = rank(small_vram, CATALOG, Preference(device="dml"), ONLINE)
    assert not any(c.device_id == "dml:0:58785" for c in r.candidates)
    assert any("of GPU memory" in w for x in r.rejected for w in x.reasons)


def test_offline_without_a_cached_phi3_runs_the_embedded_model():
    offline = Availability(cached=frozenset({"smollm2-135m-embedded"}), hub_reachable=False, offline=True)
    r = rank(profile("core-ultra-7-155h-windows"), CATALOG, Preference(), offline)
    assert [c.artifact.id for c in r.candidates] == ["smollm2-135m-embedded"]
    on_request = {a.id for a in CATALOG if a.on_request}  # Phi-4-mini: rejected first for not being asked for
    assert all("the app is offline" in x.reasons[0] for x in r.rejected
               if x.artifact_id != "smollm2-135m-embedded" and x.artifact_id not in on_request)


def test_offline_with_a_cached_phi3_runs_it():
    offline = Availability(cached=frozenset({"smollm2-135m-embedded", "phi3-mini-4k-ov-int4"}), offline=True)
    r = rank(profile("core-ultra-7-155h-windows"), CATALOG, Preference(), offline)
    assert top(r, 2) == [("phi3-mini-4k-ov-int4", "GPU.0"), ("phi3-mini-4k-ov-int4", "CPU")]


def test_offline_with_nothing_cached_has_no_candidates():
    r = rank(profile("core-ultra-7-155h-windows"), CATALOG, Preference(), Availability(offline=True))
    assert not r.candidates and any("offline" in x.reasons[0] for x in r.rejected)


def test_explicit_device_that_is_not_there_gives_reasons_not_a_guess():
    r = rank(profile("this-machine-linux-epyc-vm"), CATALOG, Preference(device="npu"), ONLINE)
    assert not r.candidates
    assert all(x.device_kind == "npu" for x in r.rejected)
    assert any("no NPU on this machine" in x.reasons[-1] for x in r.rejected)


def test_explicit_model_and_device():
    r = rank(profile("core-ultra-7-155h-windows"), CATALOG,
             Preference(device="cpu", model="phi3-mini-4k-ov-int4"), ONLINE)
    assert top(r) == [("phi3-mini-4k-ov-int4", "CPU")]


def test_device_gpu_means_the_best_gpu_by_any_engine_and_dml_means_directml_only():
    desk = profile("core-ultra-9-285k-desktop-rtx4070-windows")
    gpu = rank(desk, CATALOG, Preference(device="gpu"), ONLINE)
    # the RTX 4070 through DirectML, not the Intel iGPU through OpenVINO's GPU plugin
    assert gpu.candidates[0].device_id == "dml:0:58785"
    assert {c.device_kind for c in gpu.candidates} == {"gpu", "dml"}  # both engines' GPUs compete
    dml = rank(desk, CATALOG, Preference(device="dml"), ONLINE)
    assert dml.candidates and {c.device_kind for c in dml.candidates} == {"dml"}
    assert all(c.device_id.startswith("dml:") for c in dml.candidates)


def test_directml_candidates_are_of_kind_dml_and_say_they_run_on_a_gpu():
    r = rank(profile("ryzen-ai-9-hx-370-strix-windows"), CATALOG, Preference(), ONLINE)
    via_dml = [c for c in r.candidates if c.artifact.engine == "onnxruntime-genai" and c.device_id.startswith("dml:")]
    assert via_dml and all(c.device_kind == "dml" for c in via_dml)
    assert all(any("GPU" in why for why in c.reasons) for c in via_dml)
    assert all(c["device_kind"] == "dml" for c in r.to_dict()["candidates"] if c["device"].startswith("dml:"))


@pytest.mark.parametrize(("name", "vendor_words", "their_software"), [
    ("ryzen-ai-9-hx-370-strix-windows", "AMD XDNA NPU", "Ryzen AI"),
    ("snapdragon-x-elite-windows-arm", "Qualcomm Hexagon NPU", "QNN"),
])
def test_a_non_intel_npu_is_rejected_for_what_it_is_not_for_a_missing_driver(name, vendor_words, their_software):
    r = rank(profile(name), CATALOG, Preference(device="npu"), ONLINE)
    assert not r.candidates
    for rej in r.rejected:
        why = " ".join(rej.reasons)
        assert vendor_words in why and their_software in why and "only on Intel NPUs" in why, rej
        assert "driver" not in why  # installing a driver would not help



def test_a_model_not_in_the_catalog_is_a_rejection_with_the_reason():
    r = rank(profile("core-ultra-7-155h-windows"), CATALOG, Preference(model="phi-9-ultra"), ONLINE)
    assert not r.candidates
    assert [x.artifact_id for x in r.rejected] == ["phi-9-ultra"]
    assert "not in the catalog" in r.rejected[0].reasons[0]


def test_a_model_that_does_not_run_on_the_asked_device_says_where_it_runs():
    r = rank(profile("core-ultra-7-155h-windows"), CATALOG,
             Preference(model="phi3-mini-4k-onnx-dml-int4", device="npu"), ONLINE)
    assert not r.candidates
    assert r.rejected[0].artifact_id == "phi3-mini-4k-onnx-dml-int4" and r.rejected[0].device_kind == "npu"
    assert "runs on dml only, not on npu" in r.rejected[0].reasons[0]


def test_an_unknown_device_kind_is_a_rejection_not_an_exception():
    r = rank(profile("core-ultra-7-155h-windows"), CATALOG, Preference(device="tpu"), ONLINE)
    assert not r.candidates
    assert r.rejected and "unknown device 'tpu'" in r.rejected[0].reasons[0]
    assert "auto, cpu, gpu, npu, dml" in r.rejected[0].reasons[0]


@pytest.mark.parametrize(("name", "newer", "older", "device"), [
    ("core-ultra-7-155h-windows", "phi35-mini-ov-int4", "phi3-mini-4k-ov-int4", "GPU.0"),
    ("core-ultra-9-285k-desktop-rtx4070-windows", "phi35-mini-onnx-gpu-int4", "phi3-mini-4k-onnx-dml-int4",
     "dml:0:58785"),
    ("this-machine-linux-epyc-vm", "phi35-mini-onnx-cpu-int4", "phi3-mini-4k-onnx-cpu-int4", "CPU"),
])
def test_phi35_mini_ranks_above_phi3_mini_4k_at_the_same_size_and_says_why(name, newer, older, device):
    r = rank(profile(name), CATALOG, Preference(), ONLINE)
    order = [(c.artifact.id, c.device_id) for c in r.candidates]
    assert order.index((newer, device)) < order.index((older, device))
    new = r.candidates[order.index((newer, device))]
    assert any(why.startswith("newer model, same size: Phi-3.5-mini") for why in new.reasons)


def test_a_converted_model_takes_its_familys_quality_from_the_catalog():
    art = by_id(CATALOG, "phi35-mini-ov-int4")
    converted = replace(art, id="converted:phi35", source="local", repo_id="", quality_tier=0, quality_note="",
                        download_bytes=0)
    r = rank(profile("this-machine-linux-epyc-vm"), CATALOG + (converted,), Preference(model=converted.id), ONLINE)
    assert any(why.startswith("newer model, same size") for why in r.candidates[0].reasons)


def test_on_the_npu_the_group_wise_build_comes_first_for_accuracy():
    lunar = profile("core-ultra-7-258v-lunar-lake-windows")  # on battery: auto is efficient
    on_ac = replace(lunar, power=PowerInfo(on_battery=False, percent=55.0))  # auto is fastest, not asked for
    for p in (lunar, on_ac):
        first = rank(p, CATALOG, Preference(device="npu"), ONLINE).candidates[0]
        assert (first.artifact.id, first.device_id) == ("phi35-mini-ov-int4-gq", "NPU")
        assert any("group size 128" in why and "NPU guide" in why for why in first.reasons), first.reasons


def test_on_the_npu_the_channel_wise_build_comes_first_when_the_user_asks_for_fastest():
    r = rank(profile("core-ultra-7-258v-lunar-lake-windows"), CATALOG, Preference(mode="fastest", device="npu"),
             ONLINE)
    assert [c.artifact.id for c in r.candidates[:2]] == ["phi35-mini-ov-int4-cw", "phi35-mini-ov-int4-gq"]
    assert any("channel-wise" in why and "fastest" in why for why in r.candidates[0].reasons)


PHI4 = {"phi4-mini-ov-int4", "phi4-mini-onnx-cpu-int4", "phi4-mini-onnx-dml-int4"}


@pytest.mark.parametrize("name", machines.names())
def test_phi4_mini_is_never_the_default_but_is_ranked_when_asked_for(name):
    assert {a.id for a in CATALOG if a.on_request} == PHI4
    default = rank(profile(name), CATALOG, Preference(), ONLINE)
    assert not [c for c in default.candidates if c.artifact.id in PHI4]
    said = [r for r in default.rejected if r.artifact_id in PHI4]
    assert said and all("offered on request" in r.reasons[0] and "--prefer quality" in r.reasons[1] for r in said)
    asked = rank(profile(name), CATALOG, Preference(model="phi4-mini-ov-int4"), ONLINE)
    assert all(c.artifact.id == "phi4-mini-ov-int4" and c.device_kind in ("cpu", "gpu") for c in asked.candidates)
    assert asked.candidates or asked.rejected  # ranked, or rejected for a reason of its own (memory, engine)
    assert not any("offered on request" in " ".join(r.reasons) for r in asked.rejected)


@pytest.mark.parametrize("name", machines.names())
def test_prefer_quality_puts_the_best_model_that_fits_first(name):
    r = rank(profile(name), CATALOG, Preference(mode="quality"), ONLINE)
    fitting = [c for c in r.candidates if not c.artifact.embedded]
    if not fitting:
        return  # nothing but the embedded model fits this machine
    assert r.candidates[0].artifact.quality_tier == max(c.artifact.quality_tier for c in fitting)
    assert "quality first" in r.candidates[0].reasons[0]
    tiers = [c.artifact.quality_tier for c in fitting]
    assert tiers == sorted(tiers, reverse=True)  # by model, then by device and build within a model


def test_phi4_mini_leads_prefer_quality_where_phi3_medium_does_not_fit():
    eight_gb = rank(profile("laptop-8gb-core-i5-1135g7-windows"), CATALOG, Preference(mode="quality"), ONLINE)
    first = eight_gb.candidates[0]
    assert first.artifact.family == "phi-4-mini", top(eight_gb)
    assert not any(c.artifact.family == "phi-3-medium-4k" for c in eight_gb.candidates)
