"""Which inference engines are installed, read from package metadata without importing them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import metadata

from .profile import EngineInstall


def installed_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def probe_engines(packages: Mapping[str, str],
                  version_of: Callable[[str], str | None] = installed_version) -> tuple[EngineInstall, ...]:
    """The installed version of each distribution in `packages` (name -> where it installs at all, said when it is
    missing). The probe knows no engine: the caller names the distributions (the app: the engine registry's)."""
    result = []
    for dist, limits in packages.items():
        try:
            version = version_of(dist)
        except Exception as err:  # noqa: BLE001 - broken metadata must not stop the probe
            result.append(EngineInstall(dist, None, f"metadata unreadable: {err}"))
            continue
        reason = "" if version else ("not installed" + (f" ({limits})" if limits else ""))
        result.append(EngineInstall(dist, version, reason))
    return tuple(result)
