"""The automatic draft model (models/startup.py `assisted_options`), for real: a hub on 127.0.0.1 (tests/support/local_hub.py)
serves the Phi-3-architecture test model under Phi-3-mini's repo id and its INT4 export under FastDraft's, so start-up
fetches the catalog's paired draft through the store and loads the model with it; `--no-draft` turns it off; a draft
that cannot be fetched, that would cost JSON answers or that does not fit in memory costs only itself.

Most cases use the copies padded to the tokenizer (tests/support/padded_vocab.py), with which a draft and JSON answers can
share a pipeline; one uses the test model as built, with which they cannot (models/engines/assisted.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from models.catalog import by_id, load_drafts
from models.policy import Preference, rank
from models.settings import load_settings
from models.startup import assisted_options, start
from tests.conftest import ROOT, app_env
from tests.support.json_answers import CITY, ask, valid_city
from tests.support.local_hub import LocalHub, repo_from_folder
from tests.support.recorded import profile

TARGET_ID = "phi3-mini-4k-ov-int4"
HERE = "this-machine-linux-epyc-vm"


def _draft():
    return load_drafts()[0]


@pytest.fixture(scope="module")
def padded(phi3_models):
    from tests.support.padded_vocab import build

    return build(phi3_models.exports)


def _hub(catalog, target, draft=None):
    repos = {by_id(catalog, TARGET_ID).repo_id: repo_from_folder(target)}
    if draft is not None:
        repos[_draft().repo_id] = repo_from_folder(draft)
    return LocalHub(repos)


def _settings(hub, tmp_path, app_home, draft="auto"):
    return load_settings(home=app_home, hf_cache=tmp_path / "hf", hf_endpoint=hub.url, draft=draft)


def _start(hub, catalog, settings, steps=None):
    log = (lambda step, _s, detail: steps.append(f"{step} {detail}")) if steps is not None else (lambda *_: None)
    return start(profile(HERE), catalog, settings, Preference(model=TARGET_ID, device="cpu"), log=log)


def _draft_gets(hub) -> list[str]:
    return [s.path for s in hub.log if s.method == "GET" and _draft().repo_id in s.path and "/resolve/" in s.path]


def test_the_paired_draft_is_fetched_and_used(padded, catalog, tmp_path, app_home):
    steps: list[str] = []
    with _hub(catalog, padded["openvino-fp16"], padded["openvino-int4"]) as hub:
        loaded = _start(hub, catalog, _settings(hub, tmp_path, app_home), steps)
        assert any(p.endswith("openvino_model.bin") for p in _draft_gets(hub))  # downloaded through the store
    engine = loaded.engine
    try:
        assert engine.assist is not None and engine.assist.kind == "draft" and engine.assist.optional
        assert engine.assist.draft_label == "Phi-3-mini-FastDraft-50M" and not loaded.notices, loaded.notices
        assert engine.max_parallel == 4 and engine.structured_output
        assert any(line.startswith("draft ") and "FastDraft" in line for line in steps), steps
        assert "load OpenVINO GenAI on CPU, 4 answers at once, speculative decoding (draft: Phi-3-mini-FastDraft-50M)" \
            in steps, steps
        reply = engine.stream([{"role": "user", "content": "What is the capital of France?"}])
        assert "Paris" in reply.text()
        assert reply.notices[-1].startswith("speculative decoding (draft: Phi-3-mini-FastDraft-50M): ")
        assert "tokens per step, at least " in reply.notices[-1]  # the figures line's addition
        from webui.chat import figures_line

        assert "speculative decoding (draft: Phi-3-mini-FastDraft-50M)" in figures_line(reply, engine.name)
        from models.engines import JsonSchema, Sampling

        held = engine.stream(ask("Paris"), Sampling(max_new_tokens=64, response_format=JsonSchema.of(CITY)))
        assert valid_city(held.text()), held.text()
    finally:
        engine.close()


def test_a_draft_whose_download_fails_leaves_the_model_running_with_a_notice(padded, catalog, tmp_path, app_home):
    with _hub(catalog, padded["openvino-fp16"]) as hub:  # no draft repo: 404
        loaded = _start(hub, catalog, _settings(hub, tmp_path, app_home))
    engine = loaded.engine
    try:
        assert engine.assist is None
        (notice,) = loaded.notices
        assert notice.startswith("The draft model Phi-3-mini-FastDraft-50M could not be fetched (") and \
            "HTTP 404" in notice and notice.endswith("the model runs without speculative decoding.")
        reply = engine.stream([{"role": "user", "content": "What is the capital of France?"}])
        assert "Paris" in reply.text() and not reply.notices
    finally:
        engine.close()


def test_a_draft_that_would_cost_json_answers_is_not_even_fetched(phi3_models, catalog, tmp_path, app_home):
    # the test model as built: its tokenizer is larger than its output, so with a draft JSON answers cannot be held
    exports = phi3_models.exports
    with _hub(catalog, exports["openvino-fp16"], exports["openvino-int4"]) as hub:
        loaded = _start(hub, catalog, _settings(hub, tmp_path, app_home))
        assert not _draft_gets(hub)
    engine = loaded.engine
    try:
        (notice,) = loaded.notices
        assert notice.startswith("Speculative decoding with Phi-3-mini-FastDraft-50M is off: OpenVINO GenAI 2026.4 "
                                 "sizes the JSON grammar") and "JSON answers come first" in notice
        assert engine.assist is None and engine.structured_output
        from models.engines import JsonSchema, Sampling

        assert valid_city(engine.stream(ask("Rome"), Sampling(max_new_tokens=64,
                                                              response_format=JsonSchema.of(CITY))).text())
    finally:
        engine.close()


def test_no_draft_and_always(padded, phi3_models, catalog, tmp_path, app_home):
    with _hub(catalog, padded["openvino-fp16"], padded["openvino-int4"]) as hub:
        off = assisted_options(_candidate(catalog), _settings(hub, tmp_path, app_home, draft=""), [],
                               padded["openvino-fp16"])
        assert off == {} and not _draft_gets(hub)
    exports, notices = phi3_models.exports, []
    with _hub(catalog, exports["openvino-fp16"], exports["openvino-int4"]) as hub:
        forced = assisted_options(_candidate(catalog), _settings(hub, tmp_path / "b", app_home, draft="always"),
                                  notices, exports["openvino-fp16"])
    assert set(forced) == {"draft_path", "draft_label", "draft_optional"} and not forced["draft_optional"]
    assert not notices  # the engine says, when it loads, that JSON answers are refused meanwhile


def _candidate(catalog, **changes):
    first = rank(profile(HERE), catalog, Preference(model=TARGET_ID, device="cpu")).candidates[0]
    return replace(first, **changes)


def test_the_draft_must_fit_in_memory_with_its_share_of_the_kv_cache(phi3_models, catalog, tmp_path):
    from models.engines.kv_cache import kv_bytes_per_token
    from models.policy import HEADROOM_PERCENT, weights_bytes

    draft = phi3_models.exports["openvino-int4"]  # a forced draft folder: no download
    settings = load_settings(home=tmp_path, draft=str(draft))
    candidate = _candidate(catalog)
    art, window = candidate.artifact, candidate.context_length
    kv = kv_bytes_per_token(draft / "openvino_model.xml", 2)
    assert kv == 30 * 2 * 3 * 64 * 2  # layers x (K, V) x KV heads x head size x FP16
    weights = (draft / "openvino_model.bin").stat().st_size
    need = weights_bytes(art) + (art.kv_bytes_per_token + kv) * window * 4 + weights
    need += need * HEADROOM_PERCENT // 100
    fits = assisted_options(replace(candidate, pool_bytes=need), settings, (notices := []), parallel=4)
    assert fits == {"draft_path": str(draft), "draft_label": "openvino-int4"} and not notices
    short = assisted_options(replace(candidate, pool_bytes=need - 1), settings, notices, parallel=4)
    assert short == {}
    (notice,) = notices
    assert notice.startswith("The draft model openvino-int4 is left out: with it Phi-3-mini-4k-instruct, OpenVINO "
                             f"INT4 needs {need / 1e9:.1f} GB of") and "4 answers at once" in notice
    # one answer at a time keeps one window of the draft's KV cache, and then it fits
    assert assisted_options(replace(candidate, pool_bytes=need - 1), settings, [], parallel=1)["draft_path"]


def launch(*args, hub, hf_home):
    env = app_env()
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(hf_home))
    return subprocess.run([sys.executable, str(ROOT / "launch.py"), "--no-browser", "--model", TARGET_ID,
                           "--device", "cpu", "--max-new-tokens", "40", *args],
                          capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)


def test_no_draft_turns_it_off_and_greedy_answers_are_the_same(padded, catalog, tmp_path):
    question = "Tell me a story about a dragon."
    with _hub(catalog, padded["openvino-fp16"], padded["openvino-int4"]) as hub:
        off = launch("--ask", question, "--no-draft", hub=hub, hf_home=tmp_path / "hf")
        assert off.returncode == 0, off.stderr
        assert not _draft_gets(hub)  # not even downloaded
        on = launch("--ask", question, hub=hub, hf_home=tmp_path / "hf")
        assert on.returncode == 0, on.stderr
        assert _draft_gets(hub)
    assert "speculative" not in off.stdout + off.stderr
    assert "load     OpenVINO GenAI on CPU, speculative decoding (draft: Phi-3-mini-FastDraft-50M)" in on.stderr
    assert "note: speculative decoding (draft: Phi-3-mini-FastDraft-50M): " in on.stdout
    assert "of the draft's tokens accepted" in on.stdout  # --ask: one answer at a time, LLMPipeline's own figure
    answer = on.stdout.split("\n-- ")[0]
    assert answer == off.stdout.split("\n-- ")[0] and len(answer) > 40  # greedy: the same, token for token
    print(json.dumps({"on": on.stdout[-300:], "off": off.stdout[-200:]}, indent=1))


def test_offline_a_cached_draft_is_used_and_a_missing_one_is_said(padded, catalog, tmp_path, app_home):
    import shutil

    from tests.conftest import CLOSED_ENDPOINT

    with _hub(catalog, padded["openvino-fp16"], padded["openvino-int4"]) as hub:
        _start(hub, catalog, _settings(hub, tmp_path, app_home)).engine.close()  # both cached now
    offline = load_settings(offline=True, home=app_home, hf_cache=tmp_path / "hf", hf_endpoint=CLOSED_ENDPOINT,
                            draft="auto")
    again = start(profile(HERE), catalog, offline, Preference(model=TARGET_ID, device="cpu"))
    try:
        assert again.engine.assist is not None and again.engine.assist.kind == "draft" and not again.notices
    finally:
        again.engine.close()
    shutil.rmtree(tmp_path / "hf" / f"models--{_draft().repo_id.replace('/', '--')}")
    without = start(profile(HERE), catalog, offline, Preference(model=TARGET_ID, device="cpu"))
    try:
        assert without.engine.assist is None
        assert without.notices == ["The draft model Phi-3-mini-FastDraft-50M is not on this PC and cannot be "
                                   "downloaded now: offline mode (--offline or HF_HUB_OFFLINE=1). The model runs "
                                   "without speculative decoding."]
    finally:
        without.engine.close()


def test_the_page_and_the_api_answer_json_with_the_automatic_draft_loaded(padded, catalog, tmp_path, app_home):
    import httpx
    from gradio_client import Client

    from tools.live_app import start_app

    with _hub(catalog, padded["openvino-fp16"], padded["openvino-int4"]) as hub:
        app = start_app("--model", TARGET_ID, "--device", "cpu", home=app_home, timeout=300,
                        env={"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf-home")})
    try:
        assert any("speculative decoding (draft: Phi-3-mini-FastDraft-50M)" in line and "] load" in line
                   for line in app.lines), app.lines
        fmt = {"type": "json_schema", "json_schema": {"name": "city", "schema": CITY, "strict": True}}
        for place in ("Paris", "Tokyo", "Berlin"):
            out = httpx.post(f"{app.url}/v1/chat/completions", timeout=120, json={
                "messages": ask(place), "temperature": 0, "max_tokens": 64, "response_format": fmt})
            assert out.status_code == 200, out.text
            assert valid_city(out.json()["choices"][0]["message"]["content"]), out.text
        page = Client(app.url, verbose=False).predict(
            ask("Rome")[0]["content"], 64, 0.0, "You are a helpful assistant.", 1.0, -1, True, json.dumps(CITY),
            api_name="/chat")
        content = page[0][-1]["content"]
        text = content if isinstance(content, str) else "".join(part.get("text", "") for part in content)
        answer, figures = text.split("\n\n<sub>")
        assert valid_city(answer), text
        assert "speculative decoding (draft: Phi-3-mini-FastDraft-50M): " in figures  # the figures line says so
    finally:
        assert app.stop() == 0
