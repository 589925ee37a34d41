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
VENDORS = {0x8086: "Intel", 0x10DE: "NVIDIA", 0x1002: "AMD", 0x1022: "AMD", 0x4D4F4351: "Qualcomm",
           0x5143: "Qualcomm", MICROSOFT: "Microsoft"}
# Discrete vs integrated: DXGI has no flag for it. Integrated GPUs carve out little or no
# dedicated memory (Intel 128 MB, AMD APUs 512 MB by default); discrete ones have gigabytes.
DISCRETE_MIN_DEDICATED = 1 << 30
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
        name = bytes(d.Description).decode("utf-16-le").split("\x00", 1)[0].strip()
        if d.Flags & DXGI_ADAPTER_FLAG_SOFTWARE or (d.VendorId == MICROSOFT and d.DeviceId == BASIC_RENDER_DEVICE):
            continue  # Microsoft Basic Render Driver / WARP: software, not a GPU
        discrete = d.DedicatedVideoMemory >= DISCRETE_MIN_DEDICATED
        luid = f"{d.AdapterLuid.HighPart}:{d.AdapterLuid.LowPart}"
        devices.append(Device(
            kind="gpu", id=f"dxgi:{index}", name=name, present=True, source="dxgi",
            vendor=VENDORS.get(d.VendorId, f"0x{d.VendorId:04x}"), discrete=discrete,
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
