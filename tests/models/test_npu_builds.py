"""The NPU builds: the group-wise INT4 artifact in the catalog and the conversion target that makes one."""

from __future__ import annotations

from models.catalog import by_id, load_catalog
from models.convert import TARGETS


def test_the_group_wise_npu_build_is_in_the_catalog():
    gq = by_id(load_catalog(), "phi35-mini-ov-int4-gq")
    assert gq is not None and gq.repo_id == "OpenVINO/Phi-3.5-mini-instruct-int4-gq-ov"
    assert gq.devices[0] == "npu" and gq.group_size == 128 and gq.download_approx
    cw = by_id(load_catalog(), "phi35-mini-ov-int4-cw")
    assert cw.group_size == -1  # channel-wise


def test_the_npu_group_wise_conversion_target_uses_the_npu_guides_flags():
    t = TARGETS["openvino-npu-gq"]
    flags = list(t.flags)
    for key, value in (("--weight-format", "int4"), ("--group-size", "128"), ("--ratio", "1.0")):
        assert flags[flags.index(key) + 1] == value
    assert "--sym" in flags and t.format == "openvino-ir" and t.devices[0] == "npu"


def test_launch_offers_every_conversion_target():
    from app import arguments

    to = next(a for a in arguments.build_parser()._actions if a.dest == "to")
    assert "openvino-npu-gq" in to.choices and list(to.choices) == list(TARGETS)
