"""Adding an engine takes an adapter, a registry row and catalog rows: a test registers one that is not the product's
(transformers on the CPU, tests/support/transformers_engine.py) and runs it through rank -> load -> answer, as the
app's own start-up does, with no other change to the app."""

from __future__ import annotations

import html
from dataclasses import replace
from importlib import metadata

import pytest

from capabilities import EngineInstall, MachineProfile
from models.engines import Sampling, registry
from models.policy import Preference, rank
from models.settings import load_settings
from models.startup import local_artifact, start
from tests.support import machines
from tests.support.transformers_engine import ROW
from webui import views


@pytest.fixture
def extra_engine():
    registry.register(ROW)
    yield ROW
    registry.unregister(ROW.id)


def _recorded_with_transformers() -> MachineProfile:
    recorded = MachineProfile.from_json(
        (machines.MACHINES / "this-machine-linux-epyc-vm" / "expected.json").read_text())
    installed = EngineInstall("transformers", metadata.version("transformers"), "")
    return replace(recorded, engines=recorded.engines + (installed,))


def test_an_engine_registered_by_a_test_is_ranked_loaded_and_answers(extra_engine, phi3_models, app_home, catalog):
    assert "transformers" in registry.packages()  # the probe now reads its distribution too
    art = replace(local_artifact(str(phi3_models.hf)), id="local:phi3-test-hf", engine=extra_engine.id,
                  devices=extra_engine.devices)
    profile, settings = _recorded_with_transformers(), load_settings(offline=True, home=app_home)
    ranking = rank(profile, catalog + (art,), Preference(model=art.id))
    (first,) = ranking.candidates
    assert first.artifact.engine == extra_engine.id and first.device_kind == "cpu"
    assert html.escape(extra_engine.name) in views.explain_markdown(ranking)  # its display name, from its row
    loaded = start(profile, catalog + (art,), settings, Preference(model=art.id))
    try:
        assert loaded.engine.name == extra_engine.name and loaded.summary().engine == extra_engine.name
        reply = loaded.engine.stream([{"role": "user", "content": "What is the capital of France?"}],
                                     Sampling(max_new_tokens=12))
        text = reply.text()
        assert "Paris" in text and reply.stats.generated_tokens > 0 and reply.stats.finish_reason in ("stop", "length")
    finally:
        loaded.engine.close()


def test_without_its_row_the_engine_is_unknown_and_said_so(phi3_models, app_home, catalog):
    art = replace(local_artifact(str(phi3_models.hf)), id="local:phi3-test-hf", engine=ROW.id, devices=("cpu",))
    with pytest.raises(registry.UnknownEngine, match="unknown engine 'transformers-cpu'"):
        rank(_recorded_with_transformers(), catalog + (art,), Preference(model=art.id))
