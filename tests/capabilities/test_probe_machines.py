"""The probe on captures of real machines, on this machine live, and when parts of it fail."""

from __future__ import annotations

import ctypes
import importlib
import json
import subprocess
import sys
from pathlib import Path

import cpuinfo
import openvino
import psutil
import pytest

from capabilities import MachineProfile, probe, windows_dxgi
from capabilities.accel import PlatformReaders, probe_platform
from capabilities.profile import SystemInfo
from capabilities.windows_dxgi import DXGI_ADAPTER_DESC1
from tests.conftest import ROOT, app_env
from tests.support import machines

probe_module = importlib.import_module("capabilities.probe")  # the package exports the function by that name


@pytest.mark.parametrize("name", machines.names())
def test_each_recorded_machine_gives_its_expected_profile(name, tmp_path):
    got = probe(machines.sources(name, tmp_path)).to_dict()
    got.pop("probe_seconds")
    want = machines.expected(name)
    assert json.loads(json.dumps(got)) == want


def _profile(name, tmp_path) -> MachineProfile:
    return probe(machines.sources(name, tmp_path))


def _dev(profile, dev_id):
    return next(d for d in profile.devices if d.id == dev_id)


# One row per machine: what a user of that machine would check first.
ROWS = [
    # name, generation, usable NPU ids, GPU ids (discrete ones marked *), text that must explain a missing NPU
    ("core-ultra-7-155h-windows", "Meteor Lake", {"NPU", "pnp:0"}, {"GPU.0", "dxgi:0"}, None),
    ("core-ultra-7-258v-lunar-lake-windows", "Lunar Lake", {"NPU", "pnp:0"}, {"GPU.0", "dxgi:0"}, None),
    ("core-ultra-9-285k-desktop-rtx4070-windows", "Arrow Lake", {"NPU", "pnp:0"}, {"GPU.0", "dxgi:0*", "dxgi:1"}, None),
    ("ryzen-ai-9-hx-370-strix-windows", None, {"pnp:0"}, {"dxgi:0"}, "OpenVINO lists no NPU"),
    # the BIOS carve-out (3 GB "dedicated") does not make the APU's iGPU discrete
    ("ryzen-7-8845hs-radeon-780m-uma-3gb-windows", None, {"pnp:0"}, {"dxgi:0"}, "OpenVINO lists no NPU"),
    ("snapdragon-x-elite-windows-arm", None, {"pnp:0"}, {"dxgi:0"}, None),
    ("linux-core-ultra-5-125h-npu-driver-missing", "Meteor Lake", set(), {"GPU.0"}, "intel_vpu driver is not loaded"),
    ("laptop-8gb-core-i5-1135g7-windows", None, set(), {"GPU.0", "dxgi:0"}, "ComputeAccelerator class is empty"),
    ("this-machine-linux-epyc-vm", None, set(), set(), "no NPU on this machine"),
]


@pytest.mark.parametrize(("name", "generation", "npus", "gpus", "npu_reason"), ROWS)
def test_what_each_machine_has(name, generation, npus, gpus, npu_reason, tmp_path):
    p = _profile(name, tmp_path)
    assert p.cpu.intel_generation == generation
    assert {d.id for d in p.present("npu")} == npus
    assert {d.id + ("*" if d.discrete else "") for d in p.present("gpu")} == gpus
    if npu_reason:
        assert any(npu_reason in d.reason for d in p.devices if d.kind == "npu" and not d.present)


def test_npu_tops_come_from_device_gops(tmp_path):
    assert _dev(_profile("core-ultra-9-285k-desktop-rtx4070-windows", tmp_path), "NPU").tops == 13.1
    assert _dev(_profile("core-ultra-7-155h-windows", tmp_path / "b"), "NPU").tops == 11.5


def test_other_vendors_npus_are_named_with_what_they_need(tmp_path):
    amd = _dev(_profile("ryzen-ai-9-hx-370-strix-windows", tmp_path), "pnp:0")
    assert amd.vendor == "AMD" and "Ryzen AI" in amd.reason
    qc = _dev(_profile("snapdragon-x-elite-windows-arm", tmp_path / "q"), "pnp:0")
    assert qc.vendor == "Qualcomm" and "QNN" in qc.reason


def test_the_discrete_nvidia_gpu_is_not_hidden_behind_the_igpu(tmp_path):
    p = _profile("core-ultra-9-285k-desktop-rtx4070-windows", tmp_path)
    nvidia = _dev(p, "dxgi:0")
    assert nvidia.vendor == "NVIDIA" and nvidia.discrete and nvidia.memory_bytes == 12_585_009_152
    assert nvidia.properties["luid"] == "0:58785"
    assert not any(d.name.startswith("Microsoft Basic Render") for d in p.devices)


def test_an_apu_igpu_with_a_big_carve_out_shares_ram(tmp_path):
    igpu = _dev(_profile("ryzen-7-8845hs-radeon-780m-uma-3gb-windows", tmp_path), "dxgi:0")
    assert igpu.properties["dedicated_video_memory"] == 3 << 30  # what the old ">= 1 GiB" rule read
    assert igpu.discrete is False and igpu.memory_bytes == igpu.properties["shared_system_memory"] == 15_460_000_000


def _desc(name: str, vendor: int, device: int, dedicated: int, shared: int = 16 << 30) -> bytes:
    d = DXGI_ADAPTER_DESC1(VendorId=vendor, DeviceId=device, DedicatedVideoMemory=dedicated,
                           SharedSystemMemory=shared)
    for i, unit in enumerate(name.encode("utf-16-le")[::2]):
        d.Description[i] = unit  # ASCII names: one UTF-16 unit per byte
    return bytes(d)


# Adapters as DXGI names them, with their PCI ids (Linux pciids.h, libdrm amdgpu.ids) and the
# DedicatedVideoMemory they report: what makes each integrated or discrete is what the part is.
ADAPTERS = [
    ("AMD Radeon(TM) 780M Graphics", 0x1002, 0x15BF, 4 << 30, False),  # Phoenix, 4 GB UMA in the BIOS
    ("AMD Radeon(TM) 760M Graphics", 0x1002, 0x1900, 2 << 30, False),  # Hawk Point, 2 GB UMA
    ("AMD Radeon(TM) 740M Graphics", 0x1002, 0x15C8, 2 << 30, False),
    ("AMD Radeon(TM) 880M Graphics", 0x1002, 0x150E, 2 << 30, False),  # Strix
    ("AMD Radeon(TM) 8060S Graphics", 0x1002, 0x1586, 64 << 30, False),  # Strix Halo: 64 GB carved out
    ("AMD Radeon(TM) Graphics", 0x1002, 0x13C0, 2 << 30, False),  # Granite Ridge desktop iGPU
    ("AMD Radeon(TM) Graphics", 0x1002, 0x1638, 512 << 20, False),  # Cezanne
    ("AMD Radeon RX 7900 XTX", 0x1002, 0x744C, 24 << 30, True),
    ("AMD Radeon RX 7600M XT", 0x1002, 0x7480, 8 << 30, True),  # a laptop's discrete GPU
    ("Intel(R) Arc(TM) A770 Graphics", 0x8086, 0x56A0, 16 << 30, True),
    ("Intel(R) Arc(TM) B580 Graphics", 0x8086, 0xE20B, 12 << 30, True),
    ("Intel(R) Arc(TM) A370M Graphics", 0x8086, 0x5693, 4 << 30, True),
    ("Intel(R) Arc(TM) 140V GPU (16GB)", 0x8086, 0x64A0, 128 << 20, False),  # Lunar Lake
    ("Intel(R) Arc(TM) Graphics", 0x8086, 0x7D55, 128 << 20, False),  # Meteor Lake
    ("Intel(R) Arc(TM) B390 GPU", 0x8086, 0xB080, 128 << 20, False),  # Panther Lake's iGPU, an "Arc B"
    ("Intel(R) UHD Graphics 770", 0x8086, 0xA780, 128 << 20, False),
    ("Qualcomm(R) Adreno(TM) X1-85 GPU", 0x4D4F4351, 0x36334330, 0, False),
    ("NVIDIA GeForce RTX 4060 Laptop GPU", 0x10DE, 0x28A0, 8 << 30, True),
    ("NVIDIA GeForce GT 1030", 0x10DE, 0x1D01, 2 << 30, True),
]


@pytest.mark.parametrize(("name", "vendor", "device", "dedicated", "discrete"), ADAPTERS)
def test_integrated_or_discrete_comes_from_what_the_adapter_is(name, vendor, device, dedicated, discrete):
    (gpu,) = windows_dxgi.parse_descs([_desc(name, vendor, device, dedicated)])
    assert (gpu.name, gpu.discrete) == (name, discrete)
    assert gpu.memory_bytes == (dedicated if discrete else 16 << 30)  # an iGPU's pool is the shared memory


def test_an_unknown_vendor_is_not_guessed():
    (gpu,) = windows_dxgi.parse_descs([_desc("VMware SVGA 3D", 0x15AD, 0x0405, 8 << 20)])
    assert gpu.discrete is None and "not known for vendor 0x15ad" in gpu.reason


def test_what_follows_an_adapter_name_is_not_read(tmp_path):
    # DXGI fills Description up to its NUL; the rest of the 128 WCHARs is not text (here a lone surrogate)
    raw = bytes.fromhex(machines.inputs("ryzen-7-8845hs-radeon-780m-uma-3gb-windows")["dxgi"][0]["hex"])
    desc = DXGI_ADAPTER_DESC1.from_buffer_copy(raw)
    end = list(desc.Description).index(0)
    desc.Description[end + 1] = 0xD800
    (gpu,) = windows_dxgi.parse_descs([bytes(desc)])
    assert gpu.name == "AMD Radeon(TM) 780M Graphics" and gpu.discrete is False


def test_a_cpuinfo_cache_of_another_shape_is_replaced_not_fatal(tmp_path, monkeypatch):
    monkeypatch.setenv("PHI3PC_HOME", str(tmp_path))
    for content in ("[]", '"x"', '{"key": 1, "info": null}'):
        (tmp_path / "cpuinfo.json").write_text(content)
        probe_module._cpuinfo_live.cache_clear()
        try:
            p = probe()
        finally:
            probe_module._cpuinfo_live.cache_clear()
        assert p.cpu.reason == "" and p.cpu.brand == cpuinfo.get_cpu_info()["brand_raw"], content
        assert json.loads((tmp_path / "cpuinfo.json").read_text())["info"]["brand_raw"] == p.cpu.brand


def test_core_ultra_gets_avx_vnni_even_where_py_cpuinfo_cannot_see_it(tmp_path):
    p = _profile("core-ultra-7-155h-windows", tmp_path)
    assert "avx_vnni" in p.cpu.features and "avx512f" not in p.cpu.features


def test_dxgi_adapter_desc1_layout_matches_the_windows_sdk():
    offsets = {name: getattr(DXGI_ADAPTER_DESC1, name).offset for name, _ in DXGI_ADAPTER_DESC1._fields_}
    assert offsets["VendorId"] == 256 and offsets["DedicatedVideoMemory"] == 272
    assert offsets["AdapterLuid"] == 296 and offsets["Flags"] == 304
    assert ctypes.sizeof(DXGI_ADAPTER_DESC1) == 312


def test_live_probe_agrees_with_py_cpuinfo_psutil_and_openvino():
    p = probe()
    info = cpuinfo.get_cpu_info()
    assert p.cpu.brand == info["brand_raw"] and p.cpu.family == info["family"] and p.cpu.model == info["model"]
    assert p.cpu.logical_cores == psutil.cpu_count(logical=True)
    assert p.memory.total_bytes == psutil.virtual_memory().total
    assert abs(p.memory.available_bytes - psutil.virtual_memory().available) < 2 * 1024**3
    ov_ids = {d.id for d in p.devices if d.source == "openvino" and d.present}
    assert ov_ids == set(openvino.Core().available_devices)


# --- failing probes: an absent entry with the reason, never a crash -------------------------------

def _boom(exc):
    def raiser(*_a, **_k):
        raise exc
    return raiser


def test_openvino_raising_is_reported_not_raised(tmp_path):
    src = machines.sources("core-ultra-7-155h-windows", tmp_path,
                           openvino=_boom(RuntimeError("Exception from src/inference/src/core.cpp: NPU plugin")))
    p = probe(src)
    ov = [d for d in p.devices if d.source == "openvino"]
    assert len(ov) == 1 and not ov[0].present and "NPU plugin" in ov[0].reason
    assert p.present("npu")  # the Windows device list still sees the NPU


def test_py_cpuinfo_failing_keeps_the_rest(tmp_path):
    p = probe(machines.sources("core-ultra-7-155h-windows", tmp_path, cpuinfo=_boom(OSError("cpuid blocked"))))
    assert "py-cpuinfo failed" in p.cpu.reason and p.cpu.logical_cores == 22
    assert p.present("gpu")


def test_battery_and_memory_failures_are_explained(tmp_path):
    p = probe(machines.sources("core-ultra-7-155h-windows", tmp_path, battery=_boom(PermissionError("denied")),
                               virtual_memory=_boom(OSError("no /proc"))))
    assert p.power.on_battery is None and "denied" in p.power.reason
    assert p.memory.total_bytes == 0 and "no /proc" in p.memory.reason


WINDOWS = SystemInfo(os="Windows", os_version="10.0.22631", arch="AMD64", python="3.11.9")
LINUX = SystemInfo(os="Linux", os_version="6.8.0", arch="x86_64", python="3.12.3")


def test_dxgi_dll_missing_and_registry_denied():
    readers = PlatformReaders(dxgi_descs=_boom(FileNotFoundError("Could not find module 'dxgi'")),
                              npu_entries=_boom(PermissionError("[WinError 5] Access is denied")))
    devices = probe_platform(WINDOWS, readers)
    assert [d.present for d in devices] == [False, False]
    assert "dxgi" in devices[0].reason and "Access is denied" in devices[1].reason


def _npu_tree(tmp_path: Path, driver: str = "intel_vpu", device: str = "0x7d1d", vendor: str = "0x8086") -> Path:
    return machines.build_tree(tmp_path, {
        "sys/class/accel/accel0": {"link": "../../devices/pci0000:00/0000:00:0b.0/accel/accel0"},
        "sys/devices/pci0000:00/0000:00:0b.0/accel/accel0/device": {"link": "../../../0000:00:0b.0"},
        "sys/devices/pci0000:00/0000:00:0b.0/vendor": vendor + "\n",
        "sys/devices/pci0000:00/0000:00:0b.0/device": device + "\n",
        "sys/devices/pci0000:00/0000:00:0b.0/class": "0x120000\n",
        "sys/devices/pci0000:00/0000:00:0b.0/driver": {"link": f"../../../bus/pci/drivers/{driver}"},
        "sys/bus/pci/devices/0000:00:0b.0": {"link": "../../../devices/pci0000:00/0000:00:0b.0"},
        "dev/accel/accel0": "",
    })


def test_linux_npu_with_its_driver_is_found(tmp_path):
    devices = probe_platform(LINUX, PlatformReaders(sysfs_root=_npu_tree(tmp_path)))
    npu = devices[0]
    assert npu.present and npu.vendor == "Intel" and npu.name == "Intel NPU (Meteor Lake)"
    assert npu.properties["driver"] == "intel_vpu"
    assert len([d for d in devices if d.kind == "npu"]) == 1  # not reported twice through the PCI bus


def test_linux_npu_without_permission_says_which_group(tmp_path):
    readers = PlatformReaders(sysfs_root=_npu_tree(tmp_path), access=lambda *_: False)
    npu = probe_platform(LINUX, readers)[0]
    assert not npu.present and "'render' group" in npu.reason


def test_linux_amd_xdna_is_found_and_labelled(tmp_path):
    root = _npu_tree(tmp_path, driver="amdxdna", device="0x17f0", vendor="0x1022")
    npu = probe_platform(LINUX, PlatformReaders(sysfs_root=root))[0]
    assert npu.vendor == "AMD" and "XDNA 2" in npu.name and "Ryzen AI" in npu.reason


def test_probe_file_replaces_the_live_machine_for_explain():
    fixture = machines.MACHINES / "core-ultra-9-285k-desktop-rtx4070-windows" / "expected.json"
    done = subprocess.run([sys.executable, str(ROOT / "launch.py"), "--explain", "--json", "--probe-file",
                           str(fixture)], capture_output=True, text=True, env=app_env(), cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "Intel(R) Core(TM) Ultra 9 285K" in done.stderr  # the probe step names the recorded CPU
    first = json.loads(done.stdout)["candidates"][0]
    assert (first["artifact"], first["device"]) == ("phi35-mini-onnx-gpu-int4", "dml:0:58785")  # Phi-3.5 leads (policy)


def test_profile_json_round_trip_and_schema_check(tmp_path):
    p = _profile("core-ultra-7-155h-windows", tmp_path)
    assert MachineProfile.from_json(p.to_json()) == p
    bad = json.loads(p.to_json())
    bad["schema_version"] = 99
    with pytest.raises(ValueError, match="schema_version"):
        MachineProfile.from_dict(bad)
