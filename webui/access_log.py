"""One line per request on the console, when the host turns it on (`--access-log`): method, path, status, tokens
and time. Never a body, a query string, a header, a key or a password: the path alone, so nothing a client sent
beyond its route reaches the console. The API records its token counts in the request's state (`record`)."""

from __future__ import annotations

import time
from collections.abc import Callable


def record(scope) -> dict:
    """The request's own notes for its log line (the ASGI scope's state, which Starlette's `request.state` reads)."""
    return scope.setdefault("state", {})


def line(method: str, path: str, status: int, usage: dict | None) -> str:
    tokens = f" · {usage['prompt_tokens']}+{usage['completion_tokens']} tokens" if usage else ""
    return f"{method} {path[:200]} {status}{tokens}"


class AccessLog:
    """ASGI middleware, outermost: it sees every answer, the body-size and guard refusals included."""

    def __init__(self, app, write: Callable[[str, float], None]):
        self.app, self.write = app, write

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), {"code": 0}
        notes = record(scope)

        async def sending(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.write(line(scope.get("method", ""), scope.get("path", ""), notes.get("status") or status["code"],
                            notes.get("usage")), time.perf_counter() - started)
