"""The devices an artifact could run on for one device kind, or why there are none: read from the machine profile
and the engine's row of the registry (models/engines/registry.py). Pure."""

from __future__ import annotations

from dataclasses import dataclass

from capabilities import Device, MachineProfile

from .catalog import Artifact
from .engines import registry


def _short(engine_id: str) -> str:
    """"OpenVINO" for OpenVINO GenAI: how a reason names the engine's device plugin."""
    return registry.display_name(engine_id).split()[0]


@dataclass(frozen=True)
class Target:
    kind: str
    device_id: str
    name: str
    device_class: str  # key of PRIORS
    pool_bytes: int
    pool_name: str
    vendor: str = ""


def targets(artifact: Artifact, kind: str, profile: MachineProfile) -> tuple[list[Target], list[str]]:
    """The concrete devices an artifact could use for one device kind, or why there are none."""
    ram = profile.memory.available_bytes
    if kind == "cpu":
        return [Target("cpu", "CPU", f"CPU ({profile.cpu.brand})", "cpu", ram, "RAM")], []
    row = registry.get(artifact.engine)
    if kind == "gpu":
        if kind not in row.devices:
            paths = " or ".join(_short(i) for i in registry.ids() if kind in registry.get(i).devices)
            return [], [f"GPU path is {paths}'s"]
        source = row.probe_source
        gpus = [d for d in profile.devices if d.kind == "gpu" and d.present and (not source or d.source == source)]
        if not gpus:
            return [], [_absent_reason(profile, "gpu", f"no GPU for {_short(row.id)}", (source,) if source else ())]
        return [_gpu_target(d, ram, d.id) for d in gpus], []
    if kind == "npu":
        source = row.probe_source
        npus = [d for d in profile.devices if d.kind == "npu" and d.present and d.vendor in ("Intel", "")
                and (not source or d.source == source)]
        if row.only_os and profile.system.os != row.only_os:
            return [], [row.only_os_note]
        if not npus:
            others = [d for d in profile.devices if d.kind == "npu" and d.present and d.vendor not in ("Intel", "")]
            if others:  # a driver would not help: say what the NPU is and what does run Phi-3 on it
                return [], [_foreign_npu_reason(others[0])]
            return [], [_absent_reason(profile, "npu", "no Intel NPU found")]  # any source: sysfs, pnp
        d = npus[0]
        return [Target("npu", "NPU", f"NPU ({d.name})", "npu", ram, "RAM")], []
    if kind == "dml":
        if profile.system.os != "Windows":
            return [], ["DirectML needs Windows with a DirectX 12 GPU"]
        adapters = [d for d in profile.devices if d.source == "dxgi" and d.present]
        if not adapters:
            return [], [_absent_reason(profile, "gpu", "no DirectX 12 GPU found", ("dxgi",))]
        # DirectML is pointed at the adapter by its LUID (unambiguous), else by its DXGI index
        return [_gpu_target(d, ram, f"dml:{d.properties.get('luid') or d.properties.get('index', i)}", "DirectML ",
                            kind="dml")
                for i, d in enumerate(adapters)], []
    return [], [f"unknown device kind {kind}"]


def _gpu_target(d: Device, ram: int, device_id: str, via: str = "", kind: str = "gpu") -> Target:
    """A GPU target; kind "dml" when DirectML drives it (its name still says it is a GPU)."""
    if d.discrete:
        pool = d.memory_bytes or 0
        return Target(kind, device_id, f"{via}discrete GPU ({d.name})", "gpu-discrete", pool, "GPU memory",
                       d.vendor)
    return Target(kind, device_id, f"{via}integrated GPU ({d.name})", "gpu-integrated", ram, "RAM (shared)",
                   d.vendor)


# What runs Phi-3 on NPUs this app cannot drive (shared/reference/phi3-artifacts-and-devices.md, sections A, D):
# AMD's Ryzen AI builds of ONNX Runtime GenAI (VitisAI EP, not in the public wheel) and Qualcomm's QNN
# context binaries (Qualcomm AI Hub / Genie).
FOREIGN_NPUS = {
    "AMD": ("an AMD XDNA NPU", "AMD's Ryzen AI software (Ryzen AI builds of ONNX Runtime GenAI, "
            "amd/Phi-3.5-mini-instruct-…-onnx-ryzen-strix)"),
    "Qualcomm": ("a Qualcomm Hexagon NPU", "Qualcomm's QNN runtime with the Qualcomm AI Hub build "
                 "(qualcomm/Phi-3.5-mini-instruct)"),
}


def _foreign_npu_reason(d: Device) -> str:
    what, theirs = FOREIGN_NPUS.get(d.vendor, (f"a {d.vendor} NPU", f"{d.vendor}'s own NPU software"))
    return (f"this is {what} ({d.name}): OpenVINO and the Intel NPU library run only on Intel NPUs; "
            f"{theirs} runs Phi-3 on it, which this app does not support yet")


def _absent_reason(profile: MachineProfile, kind: str, default: str, sources: tuple[str, ...] = ()) -> str:
    """Prefer the probe's own explanations (e.g. 'intel_vpu driver not loaded')."""
    reasons = [d.reason for d in profile.devices
               if d.kind == kind and not d.present and d.reason and (not sources or d.source in sources)]
    return f"{default}: {'; '.join(dict.fromkeys(reasons))}" if reasons else default


def engine_reason(artifact: Artifact, kind: str, profile: MachineProfile) -> str | None:
    """Is a distribution that runs this engine on this device kind installed? (the registry's `dists_for`)"""
    row = registry.get(artifact.engine)
    dists = row.dists_for(kind)
    if any(profile.engine_version(d) for d in dists):
        return None
    limit = row.dist_limits.get(dists[0], "").split(" (")[0].split(";")[0]
    return f"{dists[0]} is not installed" + (f" ({limit})" if limit else "")
