"""Shared fixtures: the real embedded model, fetched once per machine, and one engine per test session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Tests never reach a real hub: an endpoint on a closed local port is "unreachable" at once,
# on a developer's machine with internet as in CI.
CLOSED_ENDPOINT = "http://127.0.0.1:9"
os.environ["HF_ENDPOINT"] = CLOSED_ENDPOINT
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from models.catalog import embedded_default, load_catalog  # noqa: E402
from models.engines import EngineSpec, load  # noqa: E402
from models.settings import load_settings  # noqa: E402
from models.store import fetch_embedded  # noqa: E402


@pytest.fixture(scope="session")
def catalog():
    return load_catalog()


@pytest.fixture(scope="session")
def app_home() -> Path:
    """The app's real cache (PHI3PC_HOME or ~/.cache/phi3-aipc): the embedded model is fetched once."""
    return load_settings().home


@pytest.fixture(scope="session")
def embedded_gguf(catalog, app_home) -> Path:
    return fetch_embedded(embedded_default(catalog), load_settings(home=app_home))


@pytest.fixture(scope="session")
def engine(embedded_gguf, app_home):
    spec = EngineSpec(path=str(embedded_gguf), engine="openvino-genai", device="CPU",
                      label="SmolLM2-135M", context_length=8192,
                      cache_dir=str(app_home / "compiled" / "tests"), options={"gguf_keep_ir": True})
    eng = load(spec)
    yield eng
    eng.close()


def app_env(home: Path | None = None) -> dict:
    """Environment for running launch.py in a subprocess from the tests."""
    env = dict(os.environ, PHI3PC_NO_VENV="1", HF_ENDPOINT=CLOSED_ENDPOINT, PYTHONUNBUFFERED="1")
    if home is not None:
        env["PHI3PC_HOME"] = str(home)
    return env


@pytest.fixture(scope="session")
def phi3_models():
    """The Phi-3-architecture test model and its exports (built once per machine, ~4 min; cached)."""
    from tests.phi3_test_model import build

    return build(log=lambda msg: print(f"[phi3 test model] {msg}", flush=True))
