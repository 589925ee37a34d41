"""A client that gives up is let go (issue 20): with one answer slot (ONNX Runtime GenAI, the NPU; here `--parallel 1`)
a question whose client timed out while queued, streamed or not, used to keep its place and then run to max_tokens,
and the next person waited for answers nobody read. The host's access log (`--access-log`) shows it: one line per
request with its status and tokens, never a body or a key."""

from __future__ import annotations

import re
import threading
import time

import httpx
import pytest

from tests.support.live_api import serving

LONG = {"model": "phi3-aipc", "max_tokens": 600, "temperature": 1.0,
        "messages": [{"role": "user", "content": "Tell me a very long story about a dragon."}]}
SECRET_WORDS = "a-question-nobody-should-see-in-the-log"


@pytest.fixture(scope="module")
def live(embedded_gguf, app_home):
    with serving(app_home, "--parallel", "1", "--access-log") as app:
        yield app


def _log_lines(app) -> list[str]:
    return [ln for ln in app.lines if re.search(r"\] request ", ln)]


def _wait_for(app, count: int, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = _log_lines(app)
        if len(lines) >= count:
            return lines
        time.sleep(0.2)
    return _log_lines(app)


def test_clients_that_give_up_while_queued_leave_the_line_and_the_log_says_so(live):
    headers = {"Authorization": "Bearer sk-test-key-never-logged"}
    url = f"{live.url}/v1/chat/completions"
    with httpx.Client(timeout=120, headers=headers) as http:
        holder = http.stream("POST", url, json={**LONG, "stream": True})
        running = holder.__enter__()  # the one slot is taken while this streams
        chunks = running.iter_lines()
        next(chunks)
        before = len(_log_lines(live))
        with pytest.raises(httpx.ReadTimeout):  # not streamed: gives up while waiting behind the story
            http.post(url, json={**LONG, "messages": [{"role": "user", "content": SECRET_WORDS}]}, timeout=1.5)

        def streamed_and_gone():
            with httpx.Client(timeout=1.5, headers=headers) as other, pytest.raises(httpx.ReadTimeout):
                with other.stream("POST", url, json={**LONG, "stream": True}) as response:
                    response.read()

        gone = threading.Thread(target=streamed_and_gone)
        gone.start()
        gone.join(30)
        lines = _wait_for(live, before + 2)  # both leave the line while the story still runs
        assert next(chunks, None) is not None  # the story still streams
        holder.__exit__(None, None, None)
        answered = http.post(url, json={**LONG, "max_tokens": 8, "temperature": 0})
    print(lines)
    assert answered.status_code == 200 and answered.json()["usage"]["completion_tokens"] == 8
    left = [ln for ln in lines[before:] if "POST /v1/chat/completions 499" in ln]
    assert len(left) == 2, lines  # neither question was ever answered
    logged = "".join(live.lines)
    assert SECRET_WORDS not in logged and "sk-test-key-never-logged" not in logged  # no bodies, no keys
    finished = _wait_for(live, before + 4)
    assert any(re.search(r"POST /v1/chat/completions 200 · \d+\+8 tokens", ln) for ln in finished), finished


def test_a_whole_answer_whose_client_gave_up_is_stopped_mid_generation(live):
    """Not streamed, its turn come: the client times out while the answer is being collected. The generation stops
    there (499 in the log, far fewer tokens than asked for) instead of running to max_tokens."""
    before = len(_log_lines(live))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{live.url}/v1/completions", timeout=2.0, json={  # a count the greedy model goes on with
            "prompt": ", ".join(str(i) for i in range(1, 30)) + ",", "max_tokens": 3000, "temperature": 0})
    lines = _wait_for(live, before + 1)
    print(lines[before:])
    gone = [ln for ln in lines[before:] if "POST /v1/completions 499" in ln]
    assert len(gone) == 1, lines[before:]
    tokens = re.search(r"· \d+\+(\d+) tokens", gone[0])
    assert tokens and int(tokens.group(1)) < 3000, gone  # stopped, not run to the limit
