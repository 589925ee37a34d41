"""The console: progress lines on stderr (stdout carries only what was asked for), notes, and a terminal that takes
any text."""

from __future__ import annotations

import os
import sys
import time


class ConsoleProgress:
    """Download progress (bytes, rate, time left) on the console, every few seconds."""

    def __init__(self, every_s: float = 2.0):
        self._every, self._last = every_s, 0.0

    def __call__(self, p) -> None:
        now = time.monotonic()
        if now - self._last < self._every or p.total_bytes < 10_000_000:
            return
        self._last = now
        print(f"           downloading {p.line()}", file=sys.stderr, flush=True)


def step(name: str, seconds: float, detail: str = "") -> None:
    """Progress goes to stderr: stdout carries only what was asked for (JSON, an answer)."""
    print(f"[{seconds:6.2f}s] {name:<8} {detail}", file=sys.stderr, flush=True)


# Gradio settings an inherited environment could set to widen what is served (files by path, an MCP server,
# server-side rendering, a public share link, code editing from the page, reloading, another address).
WIDENING_ENVIRONMENT = ("GRADIO_ALLOWED_PATHS", "GRADIO_MCP_SERVER", "GRADIO_SSR_MODE", "GRADIO_SHARE",
                        "GRADIO_VIBE_MODE", "GRADIO_WATCH_DIRS", "GRADIO_SERVER_NAME")


def drop_widening_environment() -> None:
    """Before Gradio is imported (some are read at import): the app decides what it serves, not the shell."""
    dropped = [name for name in WIDENING_ENVIRONMENT if os.environ.pop(name, None) is not None]
    if dropped:
        print(f"note: ignoring {', '.join(dropped)} from the environment (the app sets what it serves itself)",
              file=sys.stderr)


def safe_console() -> None:
    """An answer piped to a file on Windows would be written in the ANSI code page and raise on the first
    character it lacks: write UTF-8 to pipes and files, and replace what a console cannot show."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is None:
            continue
        try:
            if stream.isatty():
                reconfigure(errors="replace")
            else:
                reconfigure(encoding="utf-8", errors="replace")
        except (OSError, ValueError):
            pass
