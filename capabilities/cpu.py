"""CPU: brand, numbers, inference-relevant ISA features and the Intel Core Ultra generation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .profile import CpuInfo

# Family 6 model numbers, from Linux arch/x86/include/asm/intel-family.h
# (see shared reference, section E). Brand strings are not used: they lie across SKUs.
INTEL_GENERATIONS: dict[int, str] = {
    0xAA: "Meteor Lake",
    0xAC: "Meteor Lake",
    0xC6: "Arrow Lake",
    0xC5: "Arrow Lake",
    0xB5: "Arrow Lake",
    0xBD: "Lunar Lake",
    0xCC: "Panther Lake",
}

# normalised feature name -> spellings py-cpuinfo uses (/proc/cpuinfo on Linux, cpuid elsewhere)
FEATURES: dict[str, tuple[str, ...]] = {
    "avx2": ("avx2",),
    "avx512f": ("avx512f",),
    "avx512_vnni": ("avx512_vnni", "avx512vnni"),
    "avx_vnni": ("avx_vnni", "avxvnni"),
    "avx512_bf16": ("avx512_bf16", "avx512bf16"),
    "avx512_fp16": ("avx512_fp16", "avx512fp16"),
    "amx_tile": ("amx_tile", "amxtile"),
    "amx_bf16": ("amx_bf16", "amxbf16"),
    "amx_int8": ("amx_int8", "amxint8"),
    "f16c": ("f16c",),
    "neon": ("neon", "asimd"),
}


def intel_generation(vendor: str, family: int | None, model: int | None) -> str | None:
    if vendor != "GenuineIntel" or family != 6 or model is None:
        return None
    return INTEL_GENERATIONS.get(model)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_cpu(info: Mapping[str, Any] | None, physical: int | None, logical: int | None,
              reason: str = "") -> CpuInfo:
    """Build CpuInfo from a py-cpuinfo `get_cpu_info()` dict (None when cpuinfo failed)."""
    info = info or {}
    flags = {str(f).lower() for f in info.get("flags", ())}
    features = tuple(name for name, spellings in FEATURES.items() if flags.intersection(spellings))
    vendor = str(info.get("vendor_id_raw") or "")
    family, model = _int(info.get("family")), _int(info.get("model"))
    generation = intel_generation(vendor, family, model)
    if generation and "avx_vnni" not in features:
        # Every Core Ultra generation has AVX-VNNI, but py-cpuinfo 9 reads it only from
        # /proc/cpuinfo: its CPUID path (Windows) never reads leaf 7 sub-leaf 1 where it lives.
        features = (*features, "avx_vnni")
    return CpuInfo(
        brand=str(info.get("brand_raw") or "unknown CPU"),
        vendor=vendor,
        family=family,
        model=model,
        stepping=_int(info.get("stepping")),
        physical_cores=physical,
        logical_cores=logical or _int(info.get("count")),
        features=features,
        intel_generation=generation,
        reason=reason,
    )
