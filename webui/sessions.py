"""A Gradio session id belongs to the browser that first used it.

Gradio keys everything about a tab by its session id: the chat kept on the server, the event stream
that carries the answers, the heartbeat whose end clears the tab, Stop. The id is made by the page and
sent in the clear, so a client that learns another tab's id could read that tab's answers, stop them or
clear its chat. This middleware closes that: every browser gets its own random cookie (HttpOnly), and the
first request that uses a session id binds the id to that cookie and, in LAN mode, to the login that sent
it. A later request with the same id from anyone else is refused (403) before Gradio sees it.

The id is read where Gradio reads it: the `session_hash` query parameter (`/queue/data`), the heartbeat's
path, and the JSON body of `/queue/join`, `/cancel` and `/call/...`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from collections import OrderedDict
from http.cookies import SimpleCookie

from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse

COOKIE = "phi3pc-browser"
HEARTBEAT = "/gradio_api/heartbeat/"
WITH_BODY = ("/gradio_api/queue/join", "/gradio_api/cancel", "/gradio_api/call/")
MAX_BODY = 64 * 1024 * 1024  # read to find the id; larger bodies are refused (the page sends text only)


class SessionOwners:
    """session id -> who first used it (a digest of the browser cookie and the login), the newest `limit`."""

    def __init__(self, limit: int = 10_000):
        self._owners: OrderedDict[str, str] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def claim(self, session: str, caller: str) -> bool:
        """True when `caller` may use `session`: it is new (now bound to the caller) or already the caller's."""
        with self._lock:
            owner = self._owners.setdefault(session, caller)
            self._owners.move_to_end(session)
            while len(self._owners) > self._limit:
                self._owners.popitem(last=False)
        return hmac.compare_digest(owner, caller)


def caller_of(cookies: dict[str, str]) -> str:
    """Who sends a request: this browser's cookie and every Gradio login token it carries, as one digest."""
    parts = [cookies.get(COOKIE, "")] + sorted(v for k, v in cookies.items() if k.startswith("access-token"))
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


def _valid_cookie(value: str | None) -> bool:
    return bool(value) and 20 <= len(value) <= 64 and value.replace("-", "").replace("_", "").isalnum()


class SessionBinding:
    """ASGI middleware; see the module docstring."""

    def __init__(self, app, owners: SessionOwners | None = None):
        self.app = app
        self.owners = owners or SessionOwners()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        conn = HTTPConnection(scope)
        cookies = dict(conn.cookies)
        if not _valid_cookie(cookies.get(COOKIE)):
            cookies[COOKIE] = secrets.token_urlsafe(24)
            send = _setting_cookie(send, cookies[COOKIE])
        path = scope["path"]
        session = conn.query_params.get("session_hash")
        if path.startswith(HEARTBEAT):
            session = path[len(HEARTBEAT):].strip("/") or session
        if scope["method"] == "POST" and path.startswith(WITH_BODY):
            body = await _read_body(receive)
            if body is None:
                return await PlainTextResponse("Request body too large\n", status_code=413)(scope, receive, send)
            receive = _replay(body, receive)
            try:
                sent = json.loads(body or b"{}")
            except ValueError:
                sent = None  # Gradio answers malformed JSON itself
            if isinstance(sent, dict) and isinstance(sent.get("session_hash"), str):
                session = sent["session_hash"]
        if session and not self.owners.claim(session, caller_of(cookies)):
            refusal = PlainTextResponse("Refused: this session belongs to another browser tab; reload the page to "
                                        "start your own\n", status_code=403)
            return await refusal(scope, receive, send)
        return await self.app(scope, receive, send)


def _setting_cookie(send, value: str):
    morsel = SimpleCookie()
    morsel[COOKIE] = value
    morsel[COOKIE]["path"] = "/"
    morsel[COOKIE]["httponly"] = True
    morsel[COOKIE]["samesite"] = "Strict"
    header = morsel[COOKIE].OutputString().encode("latin-1")

    async def sending(message):
        if message["type"] == "http.response.start":
            message = dict(message)
            message["headers"] = list(message.get("headers", [])) + [(b"set-cookie", header)]
        await send(message)

    return sending


async def _read_body(receive) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, rest):
    """The body once more for the app, then the connection's own messages (a disconnect when it comes)."""
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await rest()

    return receive
