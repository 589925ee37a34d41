"""What a real client leaves out (issue 20, its defaults part): the model's own sampling, the same the page starts
from; no 512-token cut without `max_tokens`; one rule for model ids (the running model's id, and an alias that always
names the model running now); OpenAI's ranges mapped, not refused; JSON bodies whatever their Content-Type."""

from __future__ import annotations

import httpx
import pytest
from openai import BadRequestError, NotFoundError, OpenAI

from models.engines import Sampling
from webui.api import ALIAS, ChatRequest

CAPITALS = {"France": "Paris", "Germany": "Berlin", "Japan": "Tokyo", "Italy": "Rome", "Spain": "Madrid",
            "Egypt": "Cairo", "Russia": "Moscow", "England": "London", "Greece": "Athens", "Portugal": "Lisbon"}
RUNNING = "smollm2-135m-embedded"


def _ask(client: OpenAI, country: str, **extra) -> str:
    out = client.chat.completions.create(model=RUNNING, max_tokens=24, **extra, messages=[
        {"role": "user", "content": f"What is the capital of {country}?"}])
    return out.choices[0].message.content


def test_a_client_that_sends_no_temperature_gets_the_models_own_defaults(client):
    """The embedded model's own generation config is greedy (what the page starts from): without a temperature the
    API answers as at temperature 0, where it used to sample at 1.0 (2 of 12 right through llm and LangChain)."""
    plain = {country: _ask(client, country) for country in CAPITALS}
    greedy = {country: _ask(client, country, temperature=0) for country in CAPITALS}
    assert plain == greedy  # the same engine, the same greedy settings: the same tokens
    right = [country for country, answer in plain.items() if CAPITALS[country] in answer]
    assert len(right) >= 8, plain


def test_a_temperature_the_client_sends_is_honoured():
    defaults = Sampling()  # greedy
    sent = ChatRequest.model_validate({"messages": [{"role": "user", "content": "Hi"}], "temperature": 0.7,
                                       "top_p": 0.8})
    sampling = sent.sampling(defaults, 8192)
    assert (sampling.temperature, sampling.top_p) == (0.7, 0.8)
    model_sampled = Sampling(temperature=0.2, top_p=0.9, top_k=40)
    left_out = ChatRequest.model_validate({"messages": [{"role": "user", "content": "Hi"}]}).sampling(model_sampled,
                                                                                                    8192)
    assert (left_out.temperature, left_out.top_p, left_out.top_k) == (0.2, 0.9, 40)


def test_without_max_tokens_an_answer_may_run_to_the_end_of_the_window():
    req = ChatRequest.model_validate({"messages": [{"role": "user", "content": "Hi"}]})
    assert req.sampling(Sampling(), 8192).max_new_tokens == 8192  # the engine keeps it inside the window left
    asked = ChatRequest.model_validate({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 7})
    assert asked.sampling(Sampling(), 8192).max_new_tokens == 7


def test_openai_ranges_are_mapped_not_refused():
    def sampling(**fields) -> Sampling:
        return ChatRequest.model_validate({"messages": [{"role": "user", "content": "Hi"}], **fields}).sampling(
            Sampling(), 8192)

    assert sampling(seed=-1).seed is None  # Open WebUI's "a new seed every time"
    assert sampling(seed=2**40 + 5).seed == (2**40 + 5) % 2**31
    assert sampling(seed=42).seed == 42
    assert sampling(top_p=0, temperature=0.8).greedy  # only the likeliest token
    assert sampling(stop="").stop == () and sampling(stop=["", "\n\n"]).stop == ("\n\n",)


def test_the_running_model_answers_under_its_id_and_the_alias_and_another_id_says_how_to_switch(client, live):
    assert [m.id for m in client.models.list().data] == [RUNNING, ALIAS]
    assert client.models.retrieve(RUNNING).id == RUNNING and client.models.retrieve(ALIAS).id == ALIAS
    with pytest.raises(NotFoundError) as missing:
        client.models.retrieve("phi3-mini-4k-ov-int4")
    assert "switch to it on the page" in str(missing.value) and "--model phi3-mini-4k-ov-int4" in str(
        missing.value)
    with pytest.raises(NotFoundError) as other:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "Hi"}])
    message = other.value.body["message"]
    assert message.count(repr(RUNNING)) == 1 and repr(ALIAS) in message and "switch" not in message
    out = client.chat.completions.create(model=ALIAS, temperature=0, max_tokens=16,
                                         messages=[{"role": "user", "content": "What is the capital of France?"}])
    assert "Paris" in out.choices[0].message.content and out.model == RUNNING


def test_a_body_without_a_json_content_type_is_read_as_json_and_a_system_message_alone_is_answered(live):
    body = '{"messages": [{"role": "user", "content": "What is the capital of France?"}], "max_tokens": 16}'
    for headers in ({}, {"Content-Type": "application/x-www-form-urlencoded"}):  # curl -d sends the form type
        r = httpx.post(f"{live.url}/v1/chat/completions", content=body, headers=headers, timeout=120)
        assert r.status_code == 200 and "Paris" in r.json()["choices"][0]["message"]["content"], r.text
    bad = httpx.post(f"{live.url}/v1/chat/completions", content="messages=hi",
                     headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=30)
    assert bad.status_code == 400 and bad.json()["error"]["message"] == "the request body is not valid JSON"
    alone = httpx.post(f"{live.url}/v1/chat/completions", timeout=120, json={
        "max_tokens": 16, "messages": [{"role": "system", "content": "Say hello."}]})
    assert alone.status_code == 200 and alone.json()["choices"][0]["message"]["content"].strip()


def test_a_model_route_answers_a_wrong_method_with_405_and_never_echoes_a_long_id_whole(live):
    r = httpx.delete(f"{live.url}/v1/models/{ALIAS}", timeout=30)
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    long = httpx.get(f"{live.url}/v1/models/{'x' * 5000}", timeout=30)
    message = long.json()["error"]["message"]
    assert long.status_code == 404 and "x" * 80 + "…" in message and len(message) < 400


def test_penalties_change_the_answer_and_what_cannot_be_done_is_a_400(client):
    """frequency_penalty and presence_penalty were accepted and dropped; OpenVINO GenAI applies them. logprobs is
    refused by name, never answered as if honoured; n > 1 gives n answers (each its own turn), not streamed."""
    ask = [{"role": "user", "content": "Write the word cat twenty times."}]

    def answer(**extra) -> str:
        return client.chat.completions.create(model=RUNNING, messages=ask, max_tokens=40, temperature=0,
                                              **extra).choices[0].message.content

    plain = answer()
    assert answer(frequency_penalty=2.0) != plain and answer(presence_penalty=2.0) != plain
    assert answer(frequency_penalty=0, presence_penalty=0) == plain
    several = client.chat.completions.create(model=RUNNING, messages=ask, max_tokens=24, temperature=1.0, seed=7, n=3)
    texts = [c.message.content for c in several.choices]
    assert [c.index for c in several.choices] == [0, 1, 2] and len(set(texts)) == 3, texts  # seeds 7, 8, 9
    again = client.chat.completions.create(model=RUNNING, messages=ask, max_tokens=24, temperature=1.0, seed=8)
    # (not compared with texts[1]: three answers run batched, one alone; the batch is another code path)
    assert several.usage.prompt_tokens == again.usage.prompt_tokens  # the prompt counted once
    assert several.usage.completion_tokens > again.usage.completion_tokens  # every answer's tokens
    for extra, param in (({"n": 9}, "n"), ({"n": 2, "stream": True}, "n"), ({"logprobs": True, "stream": True},
                                                                           "logprobs"),
                         ({"logprobs": True, "top_logprobs": 3}, "top_logprobs")):
        with pytest.raises(BadRequestError) as caught:
            client.chat.completions.create(model=RUNNING, messages=ask, max_tokens=4, **extra)
        assert caught.value.body["param"] == param and "here" in caught.value.body["message"], caught.value.body


def test_logprobs_give_each_chosen_tokens_log_probability(client):
    """They were `null` with a 200; OpenVINO GenAI's batching engine (the CPU default) reports the chosen token's."""
    out = client.chat.completions.create(model=RUNNING, max_tokens=8, temperature=0, logprobs=True, messages=[
        {"role": "user", "content": "What is the capital of France?"}])
    content = out.choices[0].logprobs.content
    assert len(content) == out.usage.completion_tokens == 8
    assert "".join(t.token for t in content) == out.choices[0].message.content  # token by token, the answer
    assert all(t.logprob <= 0 for t in content) and any(t.logprob < 0 for t in content)
    assert client.chat.completions.create(model=RUNNING, max_tokens=2, messages=[
        {"role": "user", "content": "Hi"}]).choices[0].logprobs is None  # only when asked

