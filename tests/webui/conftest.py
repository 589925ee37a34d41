"""The API tests' app and client: the real app on the embedded model (`--offline`), one per test module. A module
that needs other flags defines its own `live`; `client` then talks to that one."""

from __future__ import annotations

import pytest

from tests.support.live_api import openai_client, serving


@pytest.fixture(scope="module")
def live(embedded_gguf, app_home):
    with serving(app_home) as app:
        yield app


@pytest.fixture(scope="module")
def client(live):
    return openai_client(live)
