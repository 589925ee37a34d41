"""Shared fixtures: the real embedded model, fetched once per test run, and one engine per test session.

Each test run has its own app home (PHI3PC_HOME) and Hugging Face cache (HF_HOME) in a fresh temporary
folder: the tests never write into the user's real caches. Only the Phi-3-architecture test model (the
one expensive build, minutes) is shared between runs, in the user's app cache (PHI3PC_TEST_MODELS).

Tests that need the conversion tools or that build/convert models are marked `slow` (automatically, by
the `phi3_models` fixture): `python launch.py --test -m "not slow"` runs the rest in about a minute.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Tests never reach a real hub: an endpoint on a closed local port is "unreachable" at once,
# on a developer's machine with internet as in CI.
CLOSED_ENDPOINT = "http://127.0.0.1:9"
os.environ["HF_ENDPOINT"] = CLOSED_ENDPOINT
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

# The user's real app cache holds only the shared test-model build; everything else goes to this run's home.
from models.settings import default_home  # noqa: E402

_USER_HOME = default_home()
os.environ.setdefault("PHI3PC_TEST_MODELS", str(_USER_HOME / "test-models"))
RUN_DIR = Path(tempfile.mkdtemp(prefix="phi3pc-tests-"))
os.environ["PHI3PC_HOME"] = str(RUN_DIR / "home")
os.environ["HF_HOME"] = str(RUN_DIR / "hf-home")  # before huggingface_hub is imported: its constants follow
os.environ.pop("HF_HUB_CACHE", None)
os.environ.pop("HF_HUB_OFFLINE", None)

from models.catalog import embedded_default, load_catalog  # noqa: E402
from models.engines import EngineSpec, load  # noqa: E402
from models.settings import load_settings  # noqa: E402
from models.store import fetch_embedded  # noqa: E402
from tools.live_app import app_env  # noqa: E402,F401 - tests import app_env from here


def pytest_collection_modifyitems(items):
    for item in items:
        if "phi3_models" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


def pytest_sessionfinish(session, exitstatus):
    import shutil

    shutil.rmtree(RUN_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def catalog():
    return load_catalog()


@pytest.fixture(scope="session")
def app_home() -> Path:
    """This run's own app home: the embedded model is fetched into it once per run."""
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


@pytest.fixture(scope="session")
def phi3_models():
    """The Phi-3-architecture test model and its exports (built once per machine, ~4 min; cached)."""
    from tools.phi3_test_model import build

    return build(log=lambda msg: print(f"[phi3 test model] {msg}", flush=True))


# -- the browser tests' fixtures (tests/support/browser_page.py has the helpers; a module may define its own `app`)
@pytest.fixture(scope="module")
def app(embedded_gguf, app_home):
    """The real app on the embedded model, one per browser test module."""
    from tests.support.browser_page import serving

    with serving(app_home) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, one per browser test module."""
    from tests.support.browser_page import chromium

    with chromium() as launched:
        yield launched


@pytest.fixture
def person(browser, app):
    """Opens a Person (its own browser context) on `app`; all are closed after the test."""
    from tests.support.browser_page import people

    with people(browser, app.url) as open_one:
        yield open_one
