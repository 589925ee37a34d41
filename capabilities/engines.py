"""Which inference engines are installed, read from package metadata without importing them."""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata

from .profile import EngineInstall

# distribution name -> where it can run at all
ENGINE_PACKAGES: dict[str, str] = {
    "openvino-genai": "",
    "onnxruntime-genai": "",
    "onnxruntime-genai-directml": "Windows only (DirectML wheels)",
    "intel-npu-acceleration-library": "Windows only (its wheels); archived upstream",
}


def installed_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def probe_engines(version_of: Callable[[str], str | None] = installed_version) -> tuple[EngineInstall, ...]:
    result = []
    for dist, limits in ENGINE_PACKAGES.items():
        try:
            version = version_of(dist)
        except Exception as err:  # noqa: BLE001 - broken metadata must not stop the probe
            result.append(EngineInstall(dist, None, f"metadata unreadable: {err}"))
            continue
        reason = "" if version else ("not installed" + (f" ({limits})" if limits else ""))
        result.append(EngineInstall(dist, version, reason))
    return tuple(result)
