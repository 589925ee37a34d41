"""Switching models from the page: memory is counted with what the running model gives back, the running
model is unloaded first when both do not fit (and brought back if the new one fails), and the engine that
runs last is the one closed at exit."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.running import Context, RunningModel
from app.serving import ServingQueue
from capabilities import MachineProfile
from models.engines import Sampling
from models.errors import AppError
from models.policy import Preference, required_bytes
from models.settings import load_settings
from models.startup import local_artifact, start
from tests.support import machines
from webui.chat import Conversation, respond

QUESTION = "What is the capital of France?"


def _answer(service: ServingQueue) -> str:
    *_, last = respond(service, "me", Conversation(), QUESTION, Sampling(max_new_tokens=32))
    return last.conversation.turns[-1].content


@pytest.fixture
def setting(embedded_gguf, app_home, catalog):
    recorded = MachineProfile.from_json(
        (machines.MACHINES / "this-machine-linux-epyc-vm" / "expected.json").read_text())
    settings = load_settings(offline=True, home=app_home)
    first = start(recorded, catalog, settings, Preference())
    held = required_bytes(first.artifact, first.candidate.context_length)
    # free memory as recorded: just what the running model needs again, no more
    profile = replace(recorded, memory=replace(recorded.memory, available_bytes=held))
    service = ServingQueue(first.engine)
    yield profile, settings, held, service, first
    service.release()


def _running(first, service, profile, settings, catalog) -> RunningModel:
    return RunningModel(first, service, Context(profile, catalog, settings, recorded=True))


def test_a_model_that_fits_only_without_the_running_one_is_loaded_after_unloading_it(setting, catalog,
                                                                                     embedded_gguf):
    profile, settings, held, service, first = setting
    bigger = replace(local_artifact(str(embedded_gguf)), id="local:bigger",
                     run_memory_bytes=int((held + held // 2) / 1.1))  # fits in free + held, not in free alone
    running = _running(first, service, profile, settings, catalog + (bigger,))
    loaded = running.switch(Preference(model="local:bigger"))
    assert loaded.summary().model == bigger.name and loaded.summary().text().startswith(bigger.name)
    assert any(n.startswith("Unloaded ") and "do not both fit in memory" in n for n in loaded.notices)
    assert first.engine._pipe is None  # the old engine was closed before the new one loaded
    assert running.current() is loaded and service.engine is loaded.engine and service.switching == ""
    assert "Paris" in _answer(service)
    now = service.engine
    running.close()  # what the app does at exit (app/serve.py): the model running now is closed
    assert now._pipe is None and service.engine is None


def test_when_the_new_model_fails_after_unloading_the_old_one_comes_back(setting, catalog, tmp_path):
    profile, settings, held, service, first = setting
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF" + b"\x00" * 4096)  # not a model
    broken = replace(local_artifact(str(junk)), run_memory_bytes=int((held + held // 2) / 1.1))
    running = _running(first, service, profile, settings, catalog + (broken,))
    with pytest.raises(AppError, match="could not start.*Still running SmolLM2-135M"):
        running.switch(Preference(model=broken.id))
    assert service.engine is not None and running.current().artifact.embedded and service.switching == ""
    assert "Paris" in _answer(service)
