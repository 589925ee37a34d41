"""The README's "verified here" claims come from models/verified_paths.json; this keeps that file honest
against what the engine tests really run (tests/engines/test_engines.py ENGINES), both ways."""

from __future__ import annotations

from pathlib import Path

from models.catalog import by_id, load_catalog
from models.catalog_table import devices_cell, verified_paths
from models.convert import TARGETS
from tests.support.engines import ENGINES

ROOT = Path(__file__).parents[2]
# what each export name of ENGINES is: (format, precision, layout)
EXPORTS = {
    "gguf": ("gguf", "q4_1", ""),  # the embedded SmolLM2 GGUF itself
    "openvino-int4": ("openvino-ir", "int4", ""),
    "openvino-fp16": ("openvino-ir", "fp16", ""),
    "openvino-npu": ("openvino-ir", "int4", "channel-wise"),
    "onnx-int4-cpu": ("onnx-genai", "int4", ""),
}


def _key(p: dict) -> tuple[str, ...]:
    return p["engine"], p["device"], p["format"], p["precision"], p["layout"]


def _run_by_the_engine_tests() -> dict[tuple[str, ...], str]:
    unknown = {where for _, where, _ in ENGINES.values()} - set(EXPORTS)
    assert not unknown, f"map the new export(s) {unknown} to (format, precision, layout) in EXPORTS"
    return {(engine, device.lower(), *EXPORTS[where]): name for name, (engine, where, device) in ENGINES.items()}


def test_the_file_claims_exactly_the_paths_the_engine_tests_run():
    claimed = {_key(p) for p in verified_paths()}
    run = set(_run_by_the_engine_tests())
    assert not claimed - run, f"claimed but not run by tests/engines/test_engines.py: {sorted(claimed - run)}"
    missing = sorted(run - claimed)
    assert not missing, f"run by tests/engines/test_engines.py but not in models/verified_paths.json: {missing}"


def test_each_claim_names_the_test_that_runs_it():
    run = _run_by_the_engine_tests()
    for p in verified_paths():
        assert (ROOT / p["test"]).is_file()
        assert run[_key(p)] == p["engines_id"], p
        assert p["model"] == "phi3-test-model" or by_id(load_catalog(), p["model"]) is not None


def test_the_export_names_are_the_conversion_targets_they_claim_to_be():
    for where, (fmt, _precision, layout) in EXPORTS.items():
        if where != "gguf":
            assert TARGETS[where].format == fmt
            assert ("-1" in TARGETS[where].flags) == (layout == "channel-wise")


def test_the_readme_column_says_what_ran_and_what_did_not():
    catalog = load_catalog()
    cell = {a.id: devices_cell(a) for a in catalog}
    assert "CPU: INT4 ONNX ran here on the Phi-3-architecture test model" in cell["phi3-mini-4k-onnx-cpu-int4"]
    assert "CPU: INT4 IR ran here on the Phi-3-architecture test model" in cell["phi3-mini-4k-ov-int4"]
    assert "CPU: INT4 channel-wise IR ran here" in cell["phi3-mini-4k-ov-int4-cw"]
    assert "CPU: Q4_1 GGUF ran here on this very file" in cell["smollm2-135m-embedded"]
    assert "CPU: not run here (the tests run no INT8 IR)" in cell["phi3-mini-4k-ov-int8"]
    assert "Intel GPU: not verified on hardware" in cell["phi3-mini-4k-ov-int8"]
    assert "DirectX 12 GPU (DirectML): not verified on hardware" == cell["phi3-mini-4k-onnx-dml-int4"]
    assert not any("verified here" in c for c in cell.values())  # the old blanket claim is gone
