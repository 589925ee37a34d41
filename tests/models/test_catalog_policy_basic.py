"""The catalog is valid data, and the policy falls back to the embedded model when it must."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from capabilities import MachineProfile
from models.catalog import CatalogError, load_catalog, parse
from models.policy import Availability, Preference, rank

FIXTURES = Path(__file__).parents[1] / "fixtures"


def _live_like() -> MachineProfile:
    recorded = FIXTURES / "machines" / "this-machine-linux-epyc-vm" / "expected.json"
    return MachineProfile.from_json(recorded.read_text())


def test_catalog_has_the_embedded_model_and_the_openvino_phi3():
    ids = {a.id for a in load_catalog()}
    assert {"smollm2-135m-embedded", "phi3-mini-4k-ov-int4"} <= ids


def test_catalog_rejects_bad_entries():
    with pytest.raises(CatalogError, match="unknown engine"):
        parse([{"id": "x", "name": "x", "family": "f", "engine": "llama.cpp", "devices": ["cpu"], "precision": "",
                "quantization": "", "format": "gguf", "source": "hub", "repo_id": "a/b", "download_bytes": 1,
                "run_memory_bytes": 1, "context_length": 1, "license": ""}])


def test_unreachable_hub_and_empty_cache_pick_the_embedded_model():
    catalog = load_catalog()
    r = rank(_live_like(), catalog, Preference(), Availability(hub_reachable=False, hub_reason="hub down"))
    assert r.candidates[0].artifact.id == "smollm2-135m-embedded"
    rejected = {x.artifact_id: x.reasons for x in r.rejected}
    assert any("hub down" in why for why in rejected["phi3-mini-4k-ov-int4"])


def test_a_cached_phi3_wins_over_the_embedded_model():
    catalog = load_catalog()
    avail = Availability(cached=frozenset({"phi3-mini-4k-ov-int4", "smollm2-135m-embedded"}), hub_reachable=False)
    r = rank(_live_like(), catalog, Preference(), avail)
    assert r.candidates[0].artifact.id == "phi3-mini-4k-ov-int4"
    assert any("no download" in why for why in r.candidates[0].reasons)
    assert r.candidates[-1].artifact.embedded


def test_explain_json_shape():
    r = rank(_live_like(), load_catalog(), Preference(), Availability())
    data = json.loads(json.dumps(r.to_dict()))
    assert {"artifact", "engine", "device", "score", "reasons"} <= set(data["candidates"][0])
    assert {"artifact", "reasons"} <= set(data["rejected"][0])


def test_readme_table_is_generated_from_the_catalog():
    from models.catalog_table import readme_block

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert readme_block(load_catalog()) in readme, "run: python -m models.catalog_table, paste into README.md"


def test_catalog_rejects_a_kv_cache_larger_than_the_memory_to_run():
    entry = {"id": "x", "name": "x", "family": "f", "engine": "openvino-genai", "devices": ["cpu"],
             "precision": "int4", "quantization": "", "format": "openvino-ir", "source": "hub", "repo_id": "a/b",
             "download_bytes": 1, "run_memory_bytes": 1_000_000_000, "context_length": 4096, "license": "",
             "kv_bytes_per_token": 393216}  # 1.6 GB of KV cache at 4K cannot be part of 1.0 GB
    with pytest.raises(CatalogError, match="KV cache"):
        parse([entry])
    assert parse([dict(entry, run_memory_bytes=3_800_000_000)])[0].kv_bytes_per_token == 393216


def test_every_catalog_artifact_has_its_per_token_kv_cache():
    assert all(a.kv_bytes_per_token > 0 for a in load_catalog())


def test_every_phi3_artifact_takes_a_quality_tier_and_its_reason_from_its_family():
    catalog = load_catalog()
    assert all(a.quality_tier > 0 and a.quality_note for a in catalog if not a.embedded)
    tiers = {a.family: a.quality_tier for a in catalog}
    assert tiers["phi-3.5-mini"] > tiers["phi-3-mini-4k"] > tiers["phi-3-mini-128k"]
    with pytest.raises(CatalogError, match="unknown keys"):
        parse([], [{"id": "f", "quality_tier": 1, "bonus": 3}])
