"""--draft and --prompt-lookup from the command line, on real models: the options reach the engine (its figures
say so) and the answers stay right; a draft that cannot be had is said, and the model runs without it."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT, app_env
from tests.support.near_tie import same_until_near_tie

REWRITE = "Rewrite this sentence in plain words: The quick brown fox jumps over the lazy dog."


def answer(done: subprocess.CompletedProcess) -> str:
    """--ask prints the answer, then its figures after a line starting "-- "."""
    return done.stdout.split("\n-- ")[0]


def ask(*args: str, home) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "launch.py"), "--no-browser", "--offline", *args],
                          capture_output=True, text=True, env=app_env(home), timeout=300, cwd=ROOT)


def test_prompt_lookup_reaches_the_engine(embedded_gguf, app_home, phi3_models):
    done = ask("--ask", REWRITE, "--prompt-lookup", "--max-new-tokens", "48", home=app_home)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "note: prompt lookup:" in done.stdout and "tokens per step" in done.stdout  # under the answer
    plain = ask("--ask", REWRITE, "--max-new-tokens", "48", home=app_home)
    assert "prompt lookup" not in plain.stdout
    same_until_near_tie(phi3_models.hf, [{"role": "user", "content": REWRITE}], answer(plain), answer(done))


def test_the_default_draft_is_silent_without_a_paired_one_and_always_says_so(embedded_gguf, app_home):
    done = ask("--ask", "What is the capital of France?", "--max-new-tokens", "32", home=app_home)  # --draft auto
    assert done.returncode == 0 and "Paris" in done.stdout, done.stderr
    assert "draft" not in done.stderr and "speculative" not in done.stdout + done.stderr
    forced = ask("--ask", "What is the capital of France?", "--draft", "always", "--max-new-tokens", "32",
                 home=app_home)
    assert forced.returncode == 0 and "Paris" in forced.stdout, forced.stderr
    assert "--draft always: no draft model is paired with SmolLM2-135M" in forced.stderr


def test_a_draft_folder_runs_speculative_decoding_with_the_same_answer(phi3_models, app_home):
    target, draft = phi3_models.exports["openvino-fp16"], phi3_models.exports["openvino-int4"]
    done = ask("--ask", "What is the capital of France?", "--model", str(target), "--draft", str(draft),
               "--max-new-tokens", "32", home=app_home)
    assert done.returncode == 0, done.stderr
    assert "speculative decoding (draft: openvino-int4)" in done.stdout and "accepted" in done.stdout
    assert "load     OpenVINO GenAI on CPU, speculative decoding (draft: openvino-int4)" in done.stderr
    # forced, with the test model as built: said once at start that JSON answers are refused meanwhile
    assert "note: JSON answers are refused while speculative decoding (draft: openvino-int4) runs" in done.stderr
    plain = ask("--ask", "What is the capital of France?", "--model", str(target), "--max-new-tokens", "32",
                home=app_home)
    assert "Paris" in done.stdout
    same_until_near_tie(phi3_models.hf, [{"role": "user", "content": "What is the capital of France?"}],
                        answer(plain), answer(done))
