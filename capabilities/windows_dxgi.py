"""DirectX 12 adapters on Windows, through DXGI with ctypes (no pywin32, no WMI).

`read_descs()` is the only code that touches Windows: it returns the raw DXGI_ADAPTER_DESC1
bytes of every adapter. `parse_descs()` turns bytes into Devices, so captures from real
machines test the parsing on any OS.

Layout and vtable slots (shared/reference, section E): DXGI_ADAPTER_DESC1 is
WCHAR Description[128]; UINT VendorId, DeviceId, SubSysId, Revision; SIZE_T DedicatedVideoMemory,
DedicatedSystemMemory, SharedSystemMemory; LUID AdapterLuid; UINT Flags.
IUnknown::Release is slot 2, IDXGIFactory1::EnumAdapters1 slot 12, IDXGIAdapter1::GetDesc1 slot 10
(IDXGIObject's SetPrivateData, SetPrivateDataInterface, GetPrivateData, GetParent come first).
"""

from __future__ import annotations

import ctypes
import re

from .profile import Device


class LUID(ctypes.Structure):
    _fields_ = [("LowPart", ctypes.c_uint32), ("HighPart", ctypes.c_int32)]


class DXGI_ADAPTER_DESC1(ctypes.Structure):  # noqa: N801 - the Windows name
    # WCHAR is 2 bytes on Windows (ctypes.c_wchar is 4 on Linux): read it as uint16 everywhere.
    # SIZE_T is 8 bytes in 64-bit processes, the only ones this app supports on Windows.
    _fields_ = [
        ("Description", ctypes.c_uint16 * 128),
        ("VendorId", ctypes.c_uint32),
        ("DeviceId", ctypes.c_uint32),
        ("SubSysId", ctypes.c_uint32),
        ("Revision", ctypes.c_uint32),
        ("DedicatedVideoMemory", ctypes.c_uint64),
        ("DedicatedSystemMemory", ctypes.c_uint64),
        ("SharedSystemMemory", ctypes.c_uint64),
        ("AdapterLuid", LUID),
        ("Flags", ctypes.c_uint32),
    ]


DXGI_ADAPTER_FLAG_SOFTWARE = 0x2
MICROSOFT = 0x1414
BASIC_RENDER_DEVICE = 0x8C
DXGI_ERROR_NOT_FOUND = -2005270526  # 0x887A0002 as a signed HRESULT
INTEL, NVIDIA, AMD, QUALCOMM = 0x8086, 0x10DE, 0x1002, 0x4D4F4351
VENDORS = {INTEL: "Intel", NVIDIA: "NVIDIA", AMD: "AMD", 0x1022: "AMD", QUALCOMM: "Qualcomm",
           0x5143: "Qualcomm", MICROSOFT: "Microsoft"}

# Discrete vs integrated: DXGI has no flag for it, and DedicatedVideoMemory does not tell: an AMD APU's
# "dedicated" memory is the UMA frame buffer the BIOS carves out of RAM (512 MB by default, 2-16 GB when
# the user raises it; a Strix Halo can carve out 96 GB). So it is told from what the adapter is:
# Intel GPUs are integrated except these discrete parts (Linux include/drm/intel/pciids.h: DG1, DG2 =
# Arc A-series, ATS-M = Flex, PVC = Max, BMG = Arc B-series, CRI). Panther Lake's iGPU is an "Arc B390":
# only the device id tells it from a B580.
INTEL_DISCRETE_IDS = frozenset({
    0x4905, 0x4906, 0x4907, 0x4908, 0x4909,  # DG1 (Iris Xe MAX)
    0x5690, 0x5691, 0x5692, 0x5693, 0x5694, 0x5695, 0x5696, 0x5697,  # DG2 mobile (Arc A-series M)
    0x56A0, 0x56A1, 0x56A2, 0x56A3, 0x56A4, 0x56A5, 0x56A6,  # DG2 desktop (Arc A770 ... A310)
    0x56B0, 0x56B1, 0x56B2, 0x56B3, 0x56BA, 0x56BB, 0x56BC, 0x56BD, 0x56BE, 0x56BF,  # DG2 Pro / embedded
    0x56C0, 0x56C1, 0x56C2,  # ATS-M (Data Center GPU Flex)
    0x0B69, 0x0B6E, 0x0BD4, 0x0BD5, 0x0BD6, 0x0BD7, 0x0BD8, 0x0BD9, 0x0BDA, 0x0BDB, 0x0BE0, 0x0BE1, 0x0BE5,  # PVC
    0xE202, 0xE209, 0xE20B, 0xE20C, 0xE20D, 0xE210, 0xE211, 0xE212, 0xE216,  # BMG G21 (Arc B580, B570, Pro B60)
    0xE220, 0xE221, 0xE222, 0xE223,  # BMG
    0x674C, 0x674D, 0x674E, 0x674F, 0x6750,  # CRI
})
INTEL_DISCRETE_NAME = re.compile(r"Arc\(TM\) (Pro )?A\d|Iris\(R\) Xe MAX|Data Center GPU", re.IGNORECASE)
# AMD GPUs are discrete except the APUs' iGPUs (libdrm data/amdgpu.ids, pci.ids): Raven/Picasso, Renoir,
# Lucienne, Cezanne, Barcelo, Van Gogh, Rembrandt (680M), Raphael and Granite Ridge ("Radeon Graphics"),
# Mendocino (610M), Phoenix and Hawk Point (780M/760M/740M), Strix (890M/880M), Krackan (860M/840M),
# Strix Halo (8060S/8050S/8040S).
AMD_APU_IDS = frozenset({
    0x15D8, 0x15DD, 0x1636, 0x164C, 0x1638, 0x15E7, 0x163F, 0x164D, 0x1681, 0x164E, 0x13C0, 0x1506,
    0x15BF, 0x15C8, 0x1900, 0x1901, 0x150E, 0x1114, 0x1902, 0x1586,
})
# ... and by the name APU iGPUs get on Windows: "AMD Radeon(TM) Graphics", "AMD Radeon(TM) 780M Graphics",
# "AMD Radeon 610M", "Radeon 8060S Graphics", "AMD Radeon(TM) Vega 8 Graphics", "AMD Radeon R7 Graphics";
# never "RX", "Pro" or a four-digit mobile number ("Radeon RX 7600M XT", "Radeon 7800M Series").
AMD_APU_NAME = re.compile(r"Radeon(\(TM\))? (Graphics|\d{3}M\b|80\d0S\b|Vega \d+ Graphics|R\d+E? Graphics)",
                          re.IGNORECASE)


def is_discrete(vendor_id: int, device_id: int, name: str) -> bool | None:
    """Discrete (own memory) or integrated (shares RAM); None for a vendor this table does not know."""
    if vendor_id == NVIDIA:
        return True
    if vendor_id in (QUALCOMM, 0x5143):
        return False  # Adreno: Snapdragon's iGPU
    if vendor_id == INTEL:
        return device_id in INTEL_DISCRETE_IDS or bool(INTEL_DISCRETE_NAME.search(name))
    if vendor_id == AMD:
        return not (device_id in AMD_APU_IDS or AMD_APU_NAME.search(name))
    return None
IID_IDXGIFactory1 = "{770aae78-f26f-4dba-a829-253c83d1b387}"
# COM vtable slots (IUnknown 0-2, IDXGIObject 3-6, then the interface's own methods)
SLOT_RELEASE = 2
SLOT_ENUM_ADAPTERS1 = 12  # IDXGIFactory: EnumAdapters 7, MakeWindowAssociation 8, GetWindowAssociation 9,
#                           CreateSwapChain 10, CreateSoftwareAdapter 11; IDXGIFactory1: EnumAdapters1 12
SLOT_GET_DESC1 = 10  # IDXGIAdapter: EnumOutputs 7, GetDesc 8, CheckInterfaceSupport 9; IDXGIAdapter1: GetDesc1 10


def desc_from_bytes(raw: bytes) -> DXGI_ADAPTER_DESC1:
    if len(raw) != ctypes.sizeof(DXGI_ADAPTER_DESC1):
        raise ValueError(f"DXGI_ADAPTER_DESC1 is {ctypes.sizeof(DXGI_ADAPTER_DESC1)} bytes, got {len(raw)}")
    return DXGI_ADAPTER_DESC1.from_buffer_copy(raw)


def parse_descs(raws: list[bytes]) -> tuple[Device, ...]:
    devices = []
    for index, raw in enumerate(raws):
        d = desc_from_bytes(raw)
        units = list(d.Description)  # the name ends at its NUL; what follows is not text
        end = units.index(0) if 0 in units else len(units)
        name = bytes(d.Description)[: 2 * end].decode("utf-16-le", errors="replace").strip()
        if d.Flags & DXGI_ADAPTER_FLAG_SOFTWARE or (d.VendorId == MICROSOFT and d.DeviceId == BASIC_RENDER_DEVICE):
            continue  # Microsoft Basic Render Driver / WARP: software, not a GPU
        discrete = is_discrete(d.VendorId, d.DeviceId, name)
        luid = f"{d.AdapterLuid.HighPart}:{d.AdapterLuid.LowPart}"
        devices.append(Device(
            kind="gpu", id=f"dxgi:{index}", name=name, present=True, source="dxgi",
            reason="" if discrete is not None else
            f"integrated or discrete is not known for vendor 0x{d.VendorId:04x}: counted as sharing RAM",
            vendor=VENDORS.get(d.VendorId, f"0x{d.VendorId:04x}"), discrete=discrete,
            # an integrated GPU shares RAM: its pool is the shared memory, not the BIOS carve-out
            memory_bytes=int(d.DedicatedVideoMemory if discrete else d.SharedSystemMemory),
            properties={
                "index": index, "vendor_id": f"0x{d.VendorId:04x}", "device_id": f"0x{d.DeviceId:04x}",
                "dedicated_video_memory": int(d.DedicatedVideoMemory),
                "shared_system_memory": int(d.SharedSystemMemory), "luid": luid,
                "software": bool(d.Flags & DXGI_ADAPTER_FLAG_SOFTWARE),
            },
        ))
    if not devices:
        devices.append(Device("gpu", "dxgi", "DirectX 12 GPU", False, "DXGI lists no hardware adapter", "dxgi"))
    return tuple(devices)


def read_descs() -> list[bytes]:  # pragma: no cover - Windows only
    """Enumerate adapters with IDXGIFactory1::EnumAdapters1 and return each DXGI_ADAPTER_DESC1 as bytes."""
    import uuid
    from ctypes import POINTER, WINFUNCTYPE, byref, c_long, c_uint, c_ulong, c_void_p

    if ctypes.sizeof(c_void_p) != 8:
        raise OSError("DXGI probing needs 64-bit Python")

    class GUID(ctypes.Structure):
        _fields_ = [("bytes", ctypes.c_ubyte * 16)]

    iid = GUID()
    ctypes.memmove(byref(iid), uuid.UUID(IID_IDXGIFactory1).bytes_le, 16)
    dxgi = ctypes.WinDLL("dxgi")
    factory = c_void_p()
    hr = dxgi.CreateDXGIFactory1(byref(iid), byref(factory))
    if hr != 0:
        raise OSError(f"CreateDXGIFactory1 failed: HRESULT 0x{hr & 0xFFFFFFFF:08X}")

    def method(obj: c_void_p, slot: int, *argtypes):
        vtable = ctypes.cast(obj, POINTER(POINTER(c_void_p)))[0]
        return WINFUNCTYPE(c_long, c_void_p, *argtypes)(vtable[slot])

    release = WINFUNCTYPE(c_ulong, c_void_p)
    out: list[bytes] = []
    try:
        enum_adapters1 = method(factory, SLOT_ENUM_ADAPTERS1, c_uint, POINTER(c_void_p))
        index = 0
        while True:
            adapter = c_void_p()
            hr = enum_adapters1(factory, index, byref(adapter))
            if hr == DXGI_ERROR_NOT_FOUND:
                break
            if hr != 0:
                raise OSError(f"EnumAdapters1({index}) failed: HRESULT 0x{hr & 0xFFFFFFFF:08X}")
            try:
                desc = DXGI_ADAPTER_DESC1()
                if method(adapter, SLOT_GET_DESC1, POINTER(DXGI_ADAPTER_DESC1))(adapter, byref(desc)) == 0:
                    out.append(bytes(desc))
            finally:
                vt = ctypes.cast(adapter, POINTER(POINTER(c_void_p)))[0]
                release(vt[SLOT_RELEASE])(adapter)
            index += 1
    finally:
        vt = ctypes.cast(factory, POINTER(POINTER(c_void_p)))[0]
        release(vt[SLOT_RELEASE])(factory)
    return out
