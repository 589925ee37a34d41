"""Hardware probe: what this PC has for running Phi-3, and why anything is absent."""

from .probe import Sources, load_profile, probe
from .profile import (
    SCHEMA_VERSION,
    CpuInfo,
    Device,
    EngineInstall,
    MachineProfile,
    MemoryInfo,
    PowerInfo,
    ProfileError,
    SystemInfo,
)

__all__ = [
    "SCHEMA_VERSION", "CpuInfo", "Device", "EngineInstall", "MachineProfile", "MemoryInfo",
    "PowerInfo", "ProfileError", "Sources", "SystemInfo", "load_profile", "probe",
]
