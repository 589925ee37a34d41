"""The engine registry is the one place an engine is described: every table the app keeps of engines is read from
it, and no product code names an engine by its id."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from capabilities.engines import probe_engines
from models.catalog import load_catalog, load_drafts
from models.engines import registry
from models.formats import REQUIRED

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("app", "bench", "capabilities", "models", "webui", "tools")


def test_every_row_names_an_adapter_and_hooks_that_import():
    for row in registry.ROWS.values():
        for ref in (row.adapter, row.batching_adapter, row.raw_bench, row.kv_value):
            if ref:
                assert callable(registry.resolve(ref)), (row.id, ref)
        assert set(row.batching) <= set(row.devices) and set(row.assisted) <= set(row.devices)
        assert not row.batching or row.batching_adapter, row.id


def test_every_format_has_an_engine_and_every_catalog_artifact_a_row():
    for fmt in (*REQUIRED, "gguf"):
        assert registry.for_format(fmt).id in registry.ids()
    for art in load_catalog() + load_drafts():
        row = registry.get(art.engine)
        assert set(art.devices) <= set(row.devices), art.id
    with pytest.raises(registry.UnknownEngine, match="no engine reads the 'pdf' format"):
        registry.for_format("pdf")


def test_the_probe_reads_the_distributions_the_registry_names():
    installed = {"openvino-genai": "2026.4.1"}
    found = {e.name: e for e in probe_engines(registry.packages(), installed.get)}
    assert set(found) == {d for row in registry.ROWS.values() for d in row.dists + tuple(
        d for ds in row.device_dists.values() for d in ds)}
    assert found["openvino-genai"].version == "2026.4.1"
    assert found["onnxruntime-genai-directml"].reason == "not installed (Windows only (DirectML wheels))"


def _literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def test_no_product_code_names_an_engine_by_its_id_but_the_registry():
    ids = set(registry.ids())
    found = []
    paths = [ROOT / "launch.py", *(p for folder in PRODUCT for p in sorted((ROOT / folder).rglob("*.py")))]
    for path in paths:
        if path != ROOT / "models" / "engines" / "registry.py":
            found += [f"{path.relative_to(ROOT)}:{line} {value!r}" for line, value in _literals(path) if value in ids]
    assert found == [], "engine ids written outside the registry:\n" + "\n".join(found)
