"""Downloads for real, over HTTP, from a hub on 127.0.0.1 (tests/support/local_hub.py) serving the Phi-3-architecture
test model under the catalog's own repo ids: full download, a cut-off download resumed, a damaged cache
repaired, an unreachable hub, and a full disk."""

from __future__ import annotations

import pytest

from models.catalog import by_id, load_catalog
from models.errors import ArtifactIncomplete, ArtifactUnavailable
from models.policy import Preference, rank
from models.settings import load_settings
from models.startup import start
from models.store import DownloadProgress, fetch_hub, hub_cached
from tests.conftest import CLOSED_ENDPOINT
from tests.support.local_hub import LocalHub, repo_from_folder
from tests.support.machines import MACHINES
from tests.support.recorded import profile

OV_ID = "phi3-mini-4k-ov-int4"
ORT_ID = "phi3-mini-4k-onnx-cpu-int4"


@pytest.fixture
def hub(phi3_models, catalog):
    """The test model under the repo id (and subfolder) of every OpenVINO IR and ONNX Runtime GenAI CPU
    build in the catalog, so whatever the policy ranks first can be downloaded."""
    repos: dict[str, dict] = {}
    for art in catalog:
        if art.source != "hub" or art.engine not in ("openvino-genai", "onnxruntime-genai") or \
                art.format not in ("openvino-ir", "onnx-genai") or (art.engine == "onnxruntime-genai"
                                                                   and "cpu" not in art.devices):
            continue
        export = "openvino-int4" if art.format == "openvino-ir" else "onnx-int4-cpu"
        repos.setdefault(art.repo_id, {}).update(repo_from_folder(phi3_models.exports[export], art.subfolder))
    with LocalHub(repos) as running:
        yield running


def settings_for(hub_url, tmp_path, offline=False):
    return load_settings(offline=offline, home=tmp_path / "app", hf_cache=tmp_path / "hf", hf_endpoint=hub_url)


def test_full_download_with_progress_then_it_loads_and_answers(hub, catalog, tmp_path):
    from models.engines import EngineSpec, Sampling, load

    seen: list[DownloadProgress] = []
    folder = fetch_hub(by_id(catalog, OV_ID), settings_for(hub.url, tmp_path), progress=seen.append)
    assert (folder / "openvino_model.bin").is_file() and (folder / "openvino_tokenizer.xml").is_file()
    assert seen and seen[-1].done_bytes == seen[-1].total_bytes > 50_000_000
    assert [p.done_bytes for p in seen] == sorted(p.done_bytes for p in seen)
    assert "GB (100 %)" in seen[-1].line()
    engine = load(EngineSpec(path=str(folder), engine="openvino-genai", device="CPU", label="downloaded"))
    assert "Paris" in engine.stream([{"role": "user", "content": "What is the capital of France?"}],
                                    Sampling(max_new_tokens=32)).text()


def test_a_download_cut_in_the_middle_resumes_without_fetching_twice(hub, catalog, tmp_path):
    art = by_id(catalog, OV_ID)
    hub.cut_once.add(f"{art.repo_id}/openvino_model.bin")
    folder = fetch_hub(art, settings_for(hub.url, tmp_path))
    size = (folder / "openvino_model.bin").stat().st_size
    gets = [s for s in hub.log if s.method == "GET" and s.path.endswith("openvino_model.bin")]
    assert len(gets) == 2 and gets[1].range and gets[1].range.startswith("bytes=")
    assert size <= hub.bytes_sent("openvino_model.bin") < size * 1.02  # the first half was not sent again


def test_a_damaged_cache_is_detected_and_only_the_bad_file_fetched_again(hub, catalog, tmp_path):
    art = by_id(catalog, OV_ID)
    settings = settings_for(hub.url, tmp_path)
    folder = fetch_hub(art, settings)
    blob = (folder / "openvino_model.bin").resolve()
    with open(blob, "r+b") as fh:  # flip bytes in the middle, same size
        fh.seek(1000)
        fh.write(b"\x00" * 64)
    with pytest.raises(ArtifactIncomplete, match="damaged .*openvino_model.bin"):
        fetch_hub(art, settings_for(hub.url, tmp_path, offline=True))
    before = len(hub.log)
    repaired = fetch_hub(art, settings)
    fetched = [s.path for s in hub.log[before:] if s.method == "GET" and "/resolve/" in s.path]
    assert [p.rsplit("/", 1)[1] for p in fetched] == ["openvino_model.bin"]
    assert (repaired / "openvino_model.bin").read_bytes() == (hub.repos[art.repo_id]["openvino_model.bin"]).read_bytes()


def test_a_partial_cache_is_completed(hub, catalog, tmp_path):
    art = by_id(catalog, OV_ID)
    settings = settings_for(hub.url, tmp_path)
    folder = fetch_hub(art, settings)
    lost = folder / "openvino_tokenizer.xml"
    lost.resolve().unlink()  # the file is gone from the cache: its blob and its link
    lost.unlink()
    assert hub_cached(art, settings) is None  # incomplete: not used as is
    before = len(hub.log)
    fetch_hub(art, settings)
    fetched = [s.path.rsplit("/", 1)[1] for s in hub.log[before:] if s.method == "GET" and "/resolve/" in s.path]
    assert fetched == ["openvino_tokenizer.xml"]
    assert lost.is_file()


def test_not_enough_disk_is_said_before_the_first_byte(hub, catalog, tmp_path):
    art = by_id(catalog, OV_ID)
    settings = settings_for(hub.url, tmp_path)
    from models import store

    with pytest.raises(ArtifactUnavailable, match=r"needs 2\.3 GB free in .*hf, only 0\.5 GB is free"):
        store.fetch_hub(art, settings, free_bytes=lambda _p: 500_000_000)  # a simulated quota
    assert not [s for s in hub.log if "/resolve/" in s.path]
    assert hub_cached(art, settings) is None


def test_startup_downloads_the_first_choice_from_the_hub(hub, catalog, tmp_path, app_home):
    here = profile("this-machine-linux-epyc-vm")
    settings = load_settings(home=app_home, hf_cache=tmp_path / "hf", hf_endpoint=hub.url)
    loaded = start(here, catalog, settings, Preference())
    assert loaded.candidate is loaded.ranking.candidates[0] and not loaded.notices
    assert "Paris" in loaded.engine.stream([{"role": "user", "content": "What is the capital of France?"}]).text()


def test_startup_runs_the_build_measured_fastest_here_not_the_estimated_one(hub, catalog, tmp_path, app_home):
    # On this AMD machine the estimate puts the first model's ONNX Runtime build first; --bench measured its
    # OpenVINO build faster here, so start-up downloads and runs that one (as --explain already says).
    from models.policy import Measured, Measurement

    here = profile("this-machine-linux-epyc-vm")
    settings = load_settings(home=app_home, hf_cache=tmp_path / "hf", hf_endpoint=hub.url)
    estimated = rank(here, catalog, Preference()).candidates
    assert estimated[0].artifact.engine == "onnxruntime-genai"
    family = estimated[0].artifact.family
    ov = next(c for c in estimated if c.artifact.family == family and c.artifact.engine == "openvino-genai")
    measured = Measured({(estimated[0].artifact.id, "CPU"): Measurement(40.0),
                         (ov.artifact.id, ov.device_id): Measurement(80.0)})
    loaded = start(here, catalog, settings, Preference(), measured=measured)
    assert loaded.artifact.id == ov.artifact.id and not loaded.notices
    assert any(r.startswith("measured here: 80 tokens/s") for r in loaded.candidate.reasons)
    assert "Paris" in loaded.engine.stream([{"role": "user", "content": "What is the capital of France?"}]).text()


def _quota(monkeypatch, tmp_path, free: int) -> None:
    import shutil as real_shutil

    from models import store

    usage = real_shutil.disk_usage(tmp_path)
    monkeypatch.setattr(store.shutil, "disk_usage", lambda p: usage._replace(free=free))  # a simulated quota


def test_a_download_refused_for_disk_space_tries_the_next_smaller_build(hub, catalog, tmp_path, app_home,
                                                                        monkeypatch):
    # With 2.5 GB free, every build over ~2.38 GB is refused before its first byte. A refusal for disk
    # space is not "the hub is down": the next, smaller build is still downloaded and runs.
    here = profile("this-machine-linux-epyc-vm")
    settings = load_settings(home=app_home, hf_cache=tmp_path / "hf", hf_endpoint=hub.url)
    _quota(monkeypatch, tmp_path, 2_500_000_000)
    loaded = start(here, catalog, settings, Preference())
    ranked = [c.artifact for c in loaded.ranking.candidates]
    fits = next(a for a in ranked if a.download_bytes * 1.05 <= 2_500_000_000)
    assert ranked[0].download_bytes * 1.05 > 2_500_000_000  # the first choice did not fit
    assert loaded.artifact.id == fits.id and not loaded.artifact.embedded
    assert any(ranked[0].id in n and "GB free" in n for n in loaded.notices)
    assert not any("internet access" in n for n in loaded.notices)
    assert "Paris" in loaded.engine.stream([{"role": "user", "content": "What is the capital of France?"}]).text()


def test_when_no_build_fits_the_disk_the_notice_says_disk_not_network(hub, catalog, tmp_path, app_home,
                                                                       monkeypatch):
    settings = load_settings(home=app_home, hf_cache=tmp_path / "hf", hf_endpoint=hub.url)
    _quota(monkeypatch, tmp_path, 300_000_000)
    loaded = start(profile("this-machine-linux-epyc-vm"), catalog, settings, Preference())
    assert loaded.artifact.embedded
    (embedded,) = [n for n in loaded.notices if "not Phi-3" in n]
    assert "not enough disk space" in embedded and "Free some disk space" in embedded
    assert "internet access" not in embedded and "cannot be reached" not in embedded
    assert not [s for s in hub.log if "/resolve/" in s.path]  # nothing was downloaded


def test_a_broken_hub_falls_back_to_the_embedded_model_without_more_downloads(hub, catalog, tmp_path, app_home):
    hub.down = True  # answers, but every request fails (503)
    settings = load_settings(home=app_home, hf_cache=tmp_path / "hf", hf_endpoint=hub.url)
    loaded = start(profile("this-machine-linux-epyc-vm"), catalog, settings, Preference())
    assert loaded.artifact.embedded
    assert sum("could not be fetched" in n for n in loaded.notices) == 1  # one failed download, not one per build
    (embedded,) = [n for n in loaded.notices if "not Phi-3" in n]
    assert "download failed" in embedded and "503" in embedded


def test_an_unreachable_hub_says_so(catalog, tmp_path, app_home):
    settings = load_settings(home=app_home, hf_cache=tmp_path / "hf", hf_endpoint=CLOSED_ENDPOINT)
    loaded = start(profile("this-machine-linux-epyc-vm"), catalog, settings, Preference())
    assert loaded.artifact.embedded
    assert any("Hugging Face Hub cannot be reached" in n for n in loaded.notices)


def test_the_page_downloads_a_model_that_is_not_here_and_switches_to_it(hub, app_home, tmp_path):
    from gradio_client import Client

    from tools.live_app import start_app

    # A recorded machine, so the first choice is the same on any host: the policy's own answer.
    recorded = MACHINES / "this-machine-linux-epyc-vm" / "expected.json"
    first = rank(profile("this-machine-linux-epyc-vm"), load_catalog(), Preference()).candidates[0]
    assert first.artifact.engine == "onnxruntime-genai"  # so that switching to OpenVINO downloads something new
    app = start_app("--probe-file", str(recorded), home=app_home,
                    env={"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf-home")})
    try:
        assert any("load     ONNX Runtime GenAI on CPU" in line for line in app.lines)  # the first choice, downloaded
        assert not any(s.path.endswith("openvino_model.bin") for s in hub.log)
        client = Client(app.url, verbose=False)
        running, _notices, _ = client.predict("auto", "cpu", OV_ID, api_name="/switch")
        assert "Phi-3-mini-4k-instruct, OpenVINO INT4 on CPU" in running
        out = client.predict("What is the capital of France?", 64, 0.0, "You are a helpful assistant.",
                             api_name="/chat")
        assert "Paris" in str(out[0][-1]["content"])
        assert any(s.path.endswith("openvino_model.bin") for s in hub.log if s.method == "GET")
    finally:
        assert app.stop() == 0
