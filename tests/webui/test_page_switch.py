"""The page's switch (webui/tabs/why.py) on a real Gradio server with a fake engine and a fake running model: while the
next model downloads and compiles, the page says which step it is in, every half second; a failure says what
failed and what runs now; questions of other tabs wait for the new model with that line."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from gradio_client import Client

from app.serving import ServingQueue
from models.catalog import Artifact
from models.errors import AppError
from models.policy import Candidate, Preference, Ranking
from models.startup import Loaded
from tests.support.recording_engine import RecordingEngine
from webui.page import PageInfo, build_page
from webui.server import free_port


@dataclass
class Progress:
    done_bytes: int
    total_bytes: int

    def line(self) -> str:
        return f"{self.done_bytes} of {self.total_bytes} MB"


def _loaded(engine, name: str, device_name: str, device_id: str, notices=()) -> Loaded:
    """A Loaded the page can show: a real Artifact and Candidate around the fake engine."""
    art = Artifact(id=name.lower(), name=name, family="fake", engine="fake", devices=("cpu", "npu"), precision="int4",
                   quantization="", format="gguf", source="local", download_bytes=0, run_memory_bytes=1,
                   context_length=4096, license="")
    kind = device_id.split(".")[0].lower()
    candidate = Candidate(art, kind, device_id, device_name, 1.0, (f"{device_name}: speed first",), 4096)
    return Loaded(engine, candidate, Ranking((candidate,), ()), list(notices))


class SlowSwitch:
    """The page's view of the running model (webui/tabs/why.py `Models`): a switch downloads in four steps, then
    "compiles"; it releases the running engine first, as a switch that does not fit beside it does."""

    def __init__(self, service: ServingQueue, fail: bool = False):
        self.service, self.fail, self.calls = service, fail, []
        self.loaded = _loaded(service.engine, "fake", "CPU (test)", "CPU")

    def current(self) -> Loaded:
        return self.loaded

    def model_choices(self):
        return (("auto: let the app choose", "auto"), ("Fake NPU build", "fake-npu"))

    def explain(self, pref: Preference) -> Ranking:
        return self.loaded.ranking

    def tell(self, what: str) -> None:
        self.service.begin_switch(what)

    def switch(self, pref: Preference, progress=None) -> Loaded:
        self.calls.append((pref.mode, pref.device, pref.model))
        self.service.begin_switch("switching models")
        try:
            for done in (25, 50, 75, 100):
                progress(Progress(done, 100))
                time.sleep(0.6)
            self.service.release()
            time.sleep(1.5)  # the compile
            if self.fail:
                self.service.swap(RecordingEngine())
                raise AppError("NPU compile failed: out of memory. Still running fake on CPU.")
            self.service.swap(RecordingEngine(words=("New", " model.")))
            self.loaded = _loaded(self.service.engine, "Fake-NPU", "NPU", "NPU", ("compiled for the NPU",))
            return self.loaded
        finally:
            self.service.end_switch()


@pytest.fixture
def page():
    started = []

    def serve(fail: bool = False):
        service = ServingQueue(RecordingEngine())
        switch = SlowSwitch(service, fail)
        info = PageInfo(title="Test", running=switch.current().summary())
        blocks = build_page(service, info, switch)
        blocks.queue(default_concurrency_limit=1, api_open=False)
        port = free_port("127.0.0.1", 7960)
        blocks.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                      ssr_mode=False)
        started.append(blocks)
        return f"http://127.0.0.1:{port}", service, switch

    yield serve
    for blocks in started:
        blocks.close()


def _text(content) -> str:
    """A chatbot message's text: a string, or (Gradio 6) a list of text parts."""
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def _outputs(job, timeout: float = 60) -> list:
    deadline = time.monotonic() + timeout
    while not job.done():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return job.outputs()


def test_the_switch_says_it_downloads_then_compiles_and_others_wait_for_the_new_model(page):
    url, service, switch = page()
    host, other = Client(url, verbose=False), Client(url, verbose=False)
    job = host.submit("auto", "npu", "fake-npu", api_name="/switch")
    while service.switching == "" and not job.done():
        time.sleep(0.05)
    while service.engine is not None:  # the old model is unloaded: a question now waits for the new one
        time.sleep(0.05)
    asked = other.submit("Hello?", 64, 0.0, "Be brief.", api_name="/chat")
    outputs = _outputs(job)
    notices = [str(out[1]) for out in outputs]
    assert any("Switching to Fake NPU build on NPU: downloading 50 of 100 MB" in n for n in notices), notices
    assert any("compiling it for the device" in n and "NPU can take several minutes" in n for n in notices)
    assert all("Sending is paused" in n for n in notices[:-1]) and "0:0" in notices[0]
    running, notice, explanation = job.result()
    assert "Fake-NPU on NPU" in running and "compiled for the NPU" in notice and "speed first" in explanation
    assert switch.calls == [("auto", "npu", "fake-npu")] and service.switching == ""
    waited = [_text(out[0][-1]["content"]) for out in _outputs(asked) if out[0]]
    assert "Waiting: the model is being switched (Fake NPU build on NPU: loading it and compiling it for the " \
        "device)..." in waited
    assert waited[-1].startswith("New model.")  # answered by the new model once it runs


def test_a_failed_switch_says_what_failed_and_what_runs_now(page):
    url, service, _ = page(fail=True)
    client = Client(url, verbose=False)
    job = client.submit("auto", "npu", "auto", api_name="/switch")
    with pytest.raises(Exception, match="NPU compile failed: out of memory. Still running fake on CPU"):
        job.result(timeout=60)
    assert "The switch failed: NPU compile failed" in str(job.outputs()[-1][1])
    assert service.engine is not None and service.switching == ""
    answer = client.predict("Hi", 64, 0.0, "Be brief.", api_name="/chat")
    assert _text(answer[0][-1]["content"]).startswith("Hello there.")
