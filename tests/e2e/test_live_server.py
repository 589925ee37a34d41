"""The real app over real HTTP: launch.py serves, gradio_client chats, streams and stops."""

from __future__ import annotations

import signal
import time

import httpx
import pytest
from gradio_client import Client

from tools.live_app import start_app


@pytest.fixture(scope="module")
def live(embedded_gguf, app_home):
    app = start_app("--offline", home=app_home)
    yield app
    assert app.stop() == 0, "Ctrl-C should end the app cleanly"
    assert "Traceback" not in "".join(app.lines)


def _last_answer(chatbot) -> str:
    return chatbot[-1]["content"] if isinstance(chatbot[-1]["content"], str) else str(chatbot[-1]["content"])


def test_the_page_says_what_runs_where_and_that_it_is_the_fallback(live):
    page = httpx.get(live.url, timeout=10).text
    assert "Phi-3 on this PC" in page
    assert "SmolLM2-135M" in page and "CPU" in page
    assert "not Phi-3" in page


def test_a_chat_over_http_streams_a_correct_answer(live):
    client = Client(live.url, verbose=False)
    job = client.submit("What is the capital of France?", 64, 0.0, "You are a helpful assistant.",
                        api_name="/chat")
    seen = []
    while not job.done():
        out = job.outputs()
        if out and (not seen or out[-1] != seen[-1]):
            seen.append(out[-1])
        time.sleep(0.01)
    final = job.result()
    chatbot = final[0] if isinstance(final, (list, tuple)) else final
    answer = _last_answer(chatbot)
    assert "Paris" in answer
    assert "tokens/s" in answer  # the figures line under the answer
    assert len(job.outputs()) >= 3, "the answer should arrive in several updates"


def test_stop_over_http_ends_the_answer_early_and_the_next_one_is_normal(live):
    client = Client(live.url, verbose=False)
    job = client.submit("Write a very long story about a dragon.", 1024, 0.0, "You are a storyteller.",
                        api_name="/chat")
    while len(job.outputs()) < 3 and not job.done():
        time.sleep(0.01)
    client.predict(api_name="/stop")
    chatbot = job.result()[0]
    answer = _last_answer(chatbot)
    assert "stopped" in answer
    words = answer.split("<sub>")[0].split()
    assert len(words) < 300
    again = client.predict("What is the capital of France?", 64, 0.0, "You are a helpful assistant.",
                           api_name="/chat")
    assert "Paris" in _last_answer(again[0])


def test_switching_device_from_the_page(live):
    client = Client(live.url, verbose=False)
    with pytest.raises(Exception, match="no Intel NPU found"):
        client.predict("auto", "npu", "auto", api_name="/switch")
    running, _notices, explanation = client.predict("fastest", "cpu", "auto", api_name="/switch")
    assert "on CPU" in running and "speed first" in explanation
    again = client.predict("What is the capital of France?", 64, 0.0, "You are a helpful assistant.",
                           api_name="/chat")
    assert "Paris" in _last_answer(again[0])


def test_the_same_page_chats_through_onnx_runtime_genai(phi3_models, app_home):
    app = start_app("--offline", "--model", str(phi3_models.exports["onnx-int4-cpu"]), home=app_home)
    try:
        assert "ONNX Runtime GenAI" in httpx.get(app.url, timeout=10).text
        out = Client(app.url, verbose=False).predict("What is the capital of France?", 64, 0.0,
                                                     "You are a helpful assistant.", api_name="/chat")
        answer = _last_answer(out[0])
        assert "Paris" in answer and "tokens/s" in answer and "cpu" in answer
    finally:
        assert app.stop(sig=signal.SIGTERM) == 0  # `kill` ends the app as cleanly as Ctrl-C


def test_a_json_answer_from_the_page_always_parses_against_its_schema(live):
    import json

    client = Client(live.url, verbose=False)
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
              "required": ["city", "country"]}
    out = client.predict("What is the capital of France? Answer with the city and the country.", 96, 0.0,
                         "You are a helpful assistant.", 1.0, -1, True, json.dumps(schema), api_name="/chat")
    content = out[0][-1]["content"]
    text = content if isinstance(content, str) else "".join(part.get("text", "") for part in content)
    value = json.loads(text.split("\n\n<sub>")[0])  # the answer as the model wrote it, its figures after it
    assert set(value) >= {"city", "country"} and all(isinstance(value[k], str) for k in ("city", "country"))
    free = client.predict("What is the capital of France?", 64, 0.0, "You are a helpful assistant.", 1.0, -1,
                          False, "", api_name="/chat")
    assert "Paris" in _last_answer(free[0])  # off again: free text
