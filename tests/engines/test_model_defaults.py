"""The page's settings start from the model's own sampling (its generation_config.json, as the engine reads it):
a model that ships sampling settings gets them, one that does not gets greedy, on both OpenVINO GenAI adapters."""

from __future__ import annotations

import json
import shutil

import pytest

from models.engines import EngineSpec, Sampling, load
from webui.chat import model_defaults


@pytest.mark.parametrize("parallel", [1, 2])
def test_the_settings_start_from_the_models_generation_config(phi3_models, app_home, tmp_path, parallel):
    plain = phi3_models.exports["openvino-int4"]
    sampled = tmp_path / "sampled"
    shutil.copytree(plain, sampled)
    config = json.loads((sampled / "generation_config.json").read_text())
    config.update(do_sample=True, temperature=0.6, top_p=0.9, top_k=40)
    (sampled / "generation_config.json").write_text(json.dumps(config))
    for folder, expected in ((plain, Sampling()), (sampled, Sampling(temperature=0.6, top_p=0.9, top_k=40))):
        engine = load(EngineSpec(path=str(folder), engine="openvino-genai", device="CPU", label=folder.name,
                                 context_length=2048, cache_dir=str(app_home / "compiled" / f"defaults-{parallel}"),
                                 parallel=parallel))
        try:
            got = model_defaults(engine)
            assert (round(got.temperature, 3), round(got.top_p, 3), got.top_k) == \
                (expected.temperature, expected.top_p, expected.top_k), (folder.name, got)
            assert got.max_new_tokens == Sampling().max_new_tokens  # the answer length stays the app's
        finally:
            engine.close()
