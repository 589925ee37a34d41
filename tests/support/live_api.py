"""The real app serving the API on the embedded model, and the official `openai` client pointed at it (the API
tests' shared fixtures' bodies)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from openai import OpenAI

from tools.live_app import LiveApp, start_app


@contextmanager
def serving(home: Path, *args: str) -> Iterator[LiveApp]:
    """The app (`--offline` plus `args`) for a test module; it must stop cleanly, with no traceback."""
    app = start_app("--offline", *args, home=home)
    yield app
    assert app.stop() == 0
    assert "Traceback" not in "".join(app.lines)


def openai_client(app: LiveApp) -> OpenAI:
    return OpenAI(base_url=f"{app.url}/v1", api_key="not-needed-on-loopback", max_retries=0, timeout=120)
