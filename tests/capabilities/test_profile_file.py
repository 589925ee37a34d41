"""--probe-file: a recorded profile that is damaged, hand-edited or from another version gets one error,
ProfileError, whose one-line message names the file, the field and what to do."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

import capabilities
from capabilities import MachineProfile, ProfileError, load_profile
from tests.support import machines

# This machine, recorded live (tests/fixtures/machines/this-machine-linux-epyc-vm/SOURCE.md)
REAL = machines.MACHINES / "this-machine-linux-epyc-vm" / "expected.json"
FIX = "record the file again with python launch.py --probe > my-pc.json"


def _real() -> dict:
    return json.loads(REAL.read_text())


def _write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "my-pc.json"
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return path


def _error(path: Path) -> str:
    with pytest.raises(ProfileError) as caught:
        load_profile(str(path))
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    return message


def _edited(tmp_path: Path, edit) -> str:
    data = _real()
    edit(data)
    return _error(_write(tmp_path, json.dumps(data)))


def test_profile_error_is_a_value_error_exported_by_the_package():
    assert issubclass(ProfileError, ValueError) and capabilities.ProfileError is ProfileError
    assert "ProfileError" in capabilities.__all__


def test_every_recorded_machine_round_trips_through_the_file(tmp_path):
    for name in machines.names():
        profile = MachineProfile.from_json((machines.MACHINES / name / "expected.json").read_text())
        path = tmp_path / f"{name}.json"
        path.write_text(profile.to_json())
        assert load_profile(str(path)) == profile
        assert MachineProfile.from_json(profile.to_json()) == profile


def test_sizes_written_as_strings_are_refused_with_the_fix(tmp_path):
    message = _edited(tmp_path, lambda d: d["memory"].update(total_bytes="16000000000"))
    assert message == (f"{tmp_path / 'my-pc.json'}: memory.total_bytes must be an integer number of bytes, "
                       f'got the string "16000000000"; {FIX}')


def test_on_battery_as_the_string_false_is_refused_not_read_as_battery_mode(tmp_path):
    message = _edited(tmp_path, lambda d: d["power"].update(on_battery="false"))
    assert 'power.on_battery must be true, false or null, got the string "false"' in message
    assert message.endswith(FIX)


@pytest.mark.parametrize(("edit", "field", "got"), [
    (lambda d: d.pop("memory"), "memory is missing", ""),
    (lambda d: d.update(memory=[1, 2]), "memory must be an object", "got an array"),
    (lambda d: d["devices"][0].pop("present"), "devices[0].present is missing", ""),
    (lambda d: d["devices"][1].update(present="yes"), "devices[1].present must be true or false",
     'got the string "yes"'),
    (lambda d: d["devices"][0].update(kind=None), "devices[0].kind must be a string", "got null"),
    (lambda d: d["devices"].append("GPU.0"), "devices[5] must be an object", 'got the string "GPU.0"'),
    (lambda d: d.update(devices={"CPU": {}}), "devices must be a list of objects", "got an object"),
    (lambda d: d["memory"].update(available_bytes=True), "memory.available_bytes must be an integer number of bytes",
     "got true"),
    (lambda d: d["memory"].update(total_bytes=1.6e10), "memory.total_bytes must be an integer number of bytes",
     "got the number 16000000000.0"),
    (lambda d: d["cpu"].update(logical_cores="2"), "cpu.logical_cores must be an integer or null",
     'got the string "2"'),
    (lambda d: d["cpu"].update(features="avx2"), "cpu.features must be a list of strings", 'got the string "avx2"'),
    (lambda d: d["system"].update(os=7), "system.os must be a string", "got the number 7"),
    (lambda d: d["power"].update(percent="90%"), "power.percent must be a number or null", 'got the string "90%"'),
    (lambda d: d["engines"][0].update(version=2026), "engines[0].version must be a string or null", "got the number"),
    (lambda d: d.update(probe_seconds="fast"), "probe_seconds must be a number", 'got the string "fast"'),
])
def test_each_wrong_field_is_named(tmp_path, edit, field, got):
    message = _edited(tmp_path, edit)
    assert field in message and got in message and message.endswith(FIX)


def test_a_newer_schema_version_says_which_this_version_reads(tmp_path):
    message = _edited(tmp_path, lambda d: d.update(schema_version=2))
    assert "schema_version is 2; this version of the app reads schema_version 1" in message
    assert message.endswith(FIX)
    assert "schema_version is missing" in _edited(tmp_path, lambda d: d.pop("schema_version"))


@pytest.mark.parametrize(("content", "says"), [
    ("", "the file is empty"),
    ("  \n", "the file is empty"),
    ("[1, 2, 3]", "must hold a JSON object (a machine profile), got an array"),
    ('"CPU"', 'must hold a JSON object (a machine profile), got the string "CPU"'),
    ('{"schema_version": 1, "system": ', "not valid JSON (line 1, column 33: Expecting value)"),
    # what a terminal prints around the JSON when stderr went into the file too
    ("[  1.65s] probe    this machine: AMD EPYC\n{}", "not valid JSON (line 1, column 8: Expecting ',' delimiter)"),
])
def test_files_that_are_not_a_profile(tmp_path, content, says):
    message = _error(_write(tmp_path, content))
    assert says in message and message.endswith(FIX)


def test_a_file_that_does_not_exist_says_how_to_make_one(tmp_path):
    message = _error(tmp_path / "my-pc.json")
    assert message == (f"{tmp_path / 'my-pc.json'}: no such file; record one with "
                       "python launch.py --probe > my-pc.json")


def test_a_folder_or_an_unreadable_file(tmp_path):
    folder = tmp_path / "my-pc.json"
    folder.mkdir()
    assert "cannot be read (IsADirectoryError" in _error(folder)
    if sys.platform != "win32" and os.geteuid() != 0:  # root reads any file
        locked = tmp_path / "locked" / "my-pc.json"
        locked.parent.mkdir()
        locked.write_text(REAL.read_text())
        locked.chmod(0)
        assert "cannot be read (PermissionError" in _error(locked)


def test_binary_garbage_is_not_utf8(tmp_path):
    assert "is not text" in _error(_write(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\xfd"))


def test_windows_powershell_redirect_utf16_with_bom_is_read(tmp_path):
    # Windows PowerShell 5.1 writes `python launch.py --probe > my-pc.json` as UTF-16 LE with a BOM
    # (and PowerShell's Out-File -Encoding utf8 writes UTF-8 with a BOM): both are the same profile.
    want = MachineProfile.from_json(REAL.read_text())
    text = REAL.read_text().replace("\n", "\r\n")
    assert load_profile(str(_write(tmp_path, b"\xff\xfe" + text.encode("utf-16-le")))) == want
    assert load_profile(str(_write(tmp_path, b"\xef\xbb\xbf" + text.encode("utf-8")))) == want
