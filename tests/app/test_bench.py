"""`launch.py --bench` as a user runs it, and the policy ranking by what it measured.

Benchmarks print figures; these tests never assert on timings: they check the report's shape, that every
figure is finite and positive, that the chart is a PNG, that the last line is the report's path, and the
failure paths (a model that cannot load, an unwritable --out)."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

from capabilities import MachineProfile
from models import measured_file as saved
from models.catalog import load_catalog
from models.policy import Availability, Measured, Measurement, Preference, rank
from models.settings import load_settings
from tests.conftest import ROOT, app_env
from tests.support import machines

TINY = ("--runs", "1", "--new-tokens", "16", "--prompt-tokens", "64")
SIGNED = ("first_token_added_ms",)  # a difference of two timings: either sign is a real result
PNG = b"\x89PNG\r\n\x1a\n"


def run_launch(*args, home: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "launch.py"), *args], capture_output=True, text=True,
                          env=app_env(home), timeout=timeout, cwd=ROOT)


def numbers(value, path=""):
    """Every number in a report entry, with where it is."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, (int, float)):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from numbers(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from numbers(v, f"{path}[{i}]")


def broken_ir(folder: Path) -> Path:
    """Every file an OpenVINO IR folder must hold, none of them a model."""
    folder.mkdir(parents=True)
    for name in ("openvino_model.xml", "openvino_model.bin", "openvino_tokenizer.xml", "openvino_detokenizer.xml"):
        (folder / name).write_text("not a model")
    return folder


def test_bench_measures_the_embedded_model_reports_a_model_that_cannot_load_and_draws_the_chart(
        embedded_gguf, app_home, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(app_home / "embedded", home / "embedded")  # the embedded model, so nothing is fetched
    out = tmp_path / "report"
    broken = broken_ir(tmp_path / "broken-ir")
    done = run_launch("--bench", "--offline", *TINY, "--out", str(out),
                      "--model", "smollm2-135m-embedded", "--model", str(broken), home=home)
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert Path(last) == out / "report.json"
    report = json.loads(Path(last).read_text())
    assert {"schema", "created", "command", "machine", "settings", "bandwidth", "targets", "peers", "unusable",
            "notes", "files"} <= set(report)
    assert report["settings"]["runs"] == 1 and report["settings"]["new_tokens"] == 16
    assert report["bandwidth"]["bytes_per_s"] > 0
    by_status = {t["status"]: t for t in report["targets"]}
    assert set(by_status) == {"ok", "failed"}, report["targets"]

    ok = by_status["ok"]
    assert ok["artifact"] == "smollm2-135m-embedded" and ok["engine"] == "OpenVINO GenAI"
    for key in ("load_s", "ttft_ms", "decode_tokens_per_s", "token_latency_ms", "peak_memory_bytes", "overhead",
                "roofline"):
        assert key in ok, key
    assert set(ok["load_s"]) == {"cold", "warm"} and set(ok["ttft_ms"]) == {"short", "long"}
    assert set(ok["token_latency_ms"]) == {"p50", "p90", "p99"}
    assert set(ok["overhead"]) == {"raw", "seam", "page", "api"}
    assert {"fraction", "ceiling_tokens_per_s", "bytes_per_token"} <= set(ok["roofline"])
    figures = list(numbers(ok))
    assert len(figures) > 30
    for where, value in figures:
        assert math.isfinite(value), where
        if not where.endswith(SIGNED):
            assert value > 0 or where.endswith(("tokens_per_s_vs_raw", "first_token_added_ms")) and value >= 0, \
                f"{where} = {value}"
    for peer in report["peers"]:  # llama.cpp, when llama-cpp-python is installed
        assert peer["vs"] == ok["key"]
        assert all(math.isfinite(v) and v > 0 for _, v in numbers(peer)), peer

    failed = by_status["failed"]
    assert failed["path"] == str(broken) and "could not load" in failed["error"]
    assert "failed" in done.stdout  # the table says so too

    if report["files"]["chart"]:
        assert (out / "report.png").read_bytes()[:8] == PNG
    else:  # matplotlib missing: one clear line, no traceback
        assert any("matplotlib is not installed" in n for n in report["notes"])
        assert "Traceback" not in done.stderr
    for step in ("measure", "load", "warm-up", "run", "saved"):
        assert f"] {step}" in done.stderr  # progress while it runs, on stderr

    kept = json.loads(next((home / "bench" / "measured").glob("*.json")).read_text())
    assert ok["key"] in kept["measured"] and kept["measured"][ok["key"]]["tokens_per_s"] > 0
    explain = run_launch("--explain", "--offline", home=home)
    assert explain.returncode == 0, explain.stderr
    assert "measured here:" in explain.stdout  # the embedded model, as measured just now

    measured_file = next((home / "bench" / "measured").glob("*.json"))
    before = measured_file.read_bytes()
    look = run_launch("--bench", "--offline", *TINY, "--no-save", "--out", str(tmp_path / "look"),
                      "--model", "smollm2-135m-embedded", home=home)
    assert look.returncode == 0, look.stderr
    assert (tmp_path / "look" / "report.json").is_file() and "(--no-save)" in look.stderr
    assert measured_file.read_bytes() == before  # a quick look does not change the ranking's figures


def test_an_unwritable_out_is_one_line_before_anything_is_measured(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = run_launch("--bench", "--offline", *TINY, "--out", str(blocker / "report"), home=tmp_path / "home",
                      timeout=60)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot be written" in errors[0] and "--out" in errors[0], done.stderr
    assert "Traceback" not in done.stderr and "] load" not in done.stderr


def test_bench_flags_are_checked():
    done = subprocess.run([sys.executable, str(ROOT / "launch.py"), "--bench", "--runs", "0"], capture_output=True,
                          text=True, env=app_env(), cwd=ROOT, timeout=60)
    assert done.returncode == 2 and "--runs" in done.stderr


EPYC = "this-machine-linux-epyc-vm"  # an AMD CPU: the estimate puts ONNX Runtime GenAI's CPU build first


def _epyc() -> MachineProfile:
    return MachineProfile.from_json((machines.MACHINES / EPYC / "expected.json").read_text())


def test_a_measurement_reorders_the_builds_of_one_model_and_nothing_else():
    catalog, profile = load_catalog(), _epyc()
    estimated = rank(profile, catalog, Preference(), Availability())
    order = [(c.artifact.id, c.device_id) for c in estimated.candidates]
    assert order[:2] == [("phi35-mini-onnx-cpu-int4", "CPU"), ("phi35-mini-ov-int4", "CPU")]
    measured = Measured({("phi35-mini-onnx-cpu-int4", "CPU"): Measurement(40.0),
                         ("phi35-mini-ov-int4", "CPU"): Measurement(80.0, ttft_s=0.05),
                         ("smollm2-135m-embedded", "CPU"): Measurement(400.0)})
    r = rank(profile, catalog, Preference(), Availability(), measured)
    after = [(c.artifact.id, c.device_id) for c in r.candidates]
    assert after[:2] == [("phi35-mini-ov-int4", "CPU"), ("phi35-mini-onnx-cpu-int4", "CPU")]
    assert after[2:] == order[2:]  # unmeasured builds keep their places; the embedded model stays last
    assert [c.score for c in r.candidates] == sorted((c.score for c in r.candidates), reverse=True)
    first = r.candidates[0]
    assert any(why.startswith("measured here: 80 tokens/s, first token 50 ms") for why in first.reasons)
    assert not any("Microsoft's CPU build" in why for why in r.candidates[1].reasons)  # measured, not estimated
    assert any("measured here: 400 tokens/s" in why for why in r.candidates[-1].reasons)


def test_explain_follows_a_saved_measurement_of_a_recorded_machine(tmp_path):
    profile, home = _epyc(), tmp_path / "home"
    settings = load_settings(home=home)
    version = {e.name: e.version for e in profile.engines}
    saved.save(settings, profile, {
        "phi35-mini-ov-int4@CPU": {"artifact": "phi35-mini-ov-int4", "device": "CPU", "engine": "openvino-genai",
                                   "engine_version": version["openvino-genai"], "tokens_per_s": 138.0,
                                   "ttft_s": 0.052, "measured_at": "2026-12-01"},
        "phi35-mini-onnx-cpu-int4@CPU": {"artifact": "phi35-mini-onnx-cpu-int4", "device": "CPU",
                                         "engine": "onnxruntime-genai", "engine_version": version["onnxruntime-genai"],
                                         "tokens_per_s": 99.0, "ttft_s": 0.147, "measured_at": "2026-12-01"},
        "phi3-mini-4k-ov-int4@CPU": {"artifact": "phi3-mini-4k-ov-int4", "device": "CPU", "engine": "openvino-genai",
                                     "engine_version": "1999.0", "tokens_per_s": 999.0},  # another version: unused
    })
    done = run_launch("--explain", "--probe-file", str(machines.MACHINES / EPYC / "expected.json"), home=home,
                      timeout=60)
    assert done.returncode == 0, done.stderr
    ranked = [line.split()[1] for line in done.stdout.splitlines() if line[:4].strip().rstrip(".").isdigit()]
    assert ranked[:2] == ["phi35-mini-ov-int4", "phi35-mini-onnx-cpu-int4"], done.stdout
    assert "measured here: 138 tokens/s" in done.stdout and "measured here: 99 tokens/s" in done.stdout
    assert "measured here: 999" not in done.stdout
