"""A Gradio session id, and every answer (event) started in it, belong to the browser that first used it.

Gradio keys everything about a tab by its session id: the chat kept on the server, the event stream
that carries the answers, the heartbeat whose end clears the tab, Stop. The id is made by the page and
sent in the clear, so a client that learns another tab's id could read that tab's answers, stop them or
clear its chat. This middleware closes that: every browser gets its own random cookie (HttpOnly), and the
first request that uses a session id binds the id to that cookie and, in LAN mode, to the login that sent
it. A later request with the same id from anyone else is refused (403) before Gradio sees it.

The routes that take a session or an event id (`SESSION_ROUTES`; tests/webui/test_security_routes.py checks the
installed Gradio's routes against it and security.CLOSED, so a route a Gradio upgrade adds fails the suite):
- `/queue/join` (JSON body): the session is claimed; `fn_index` must name one of the page's handlers and the
  text must be valid Unicode (400); the event id Gradio answers with is recorded as the caller's.
- `/queue/data` (`session_hash` query): only a session of the caller's that has joined the queue (404
  otherwise: Gradio would log a traceback for every unknown id).
- `/heartbeat/<id>` (path): the session is claimed.
- `/cancel` (JSON body): the session must be the caller's, and so must the event (an event belongs to the
  session and login that started it).
A body that is not a JSON object is a 400 here, whatever Gradio would make of it. The body's size is bounded
before it gets here (body.BodyLimit covers every route).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from http.cookies import SimpleCookie

from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse

from .asgi import read_body, replay

COOKIE = "phi3pc-browser"
PREFIX = "/gradio_api"
JOIN, DATA, CANCEL, HEARTBEAT = (f"{PREFIX}/queue/join", f"{PREFIX}/queue/data", f"{PREFIX}/cancel",
                                 f"{PREFIX}/heartbeat/")
SESSION_ROUTES = (JOIN, DATA, CANCEL, HEARTBEAT + "{session_hash}")  # the open routes that take a session or event


class SessionOwners:
    """session id -> who first used it (a digest of the browser cookie and the login), and event id -> who
    started it; the newest `limit` of each."""

    def __init__(self, limit: int = 10_000):
        self._owners: OrderedDict[str, str] = OrderedDict()
        self._events: OrderedDict[str, str] = OrderedDict()
        self._joined: OrderedDict[str, None] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def _remember(self, table: OrderedDict, key: str, value) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > self._limit:
            table.popitem(last=False)

    def claim(self, session: str, caller: str) -> bool:
        """True when `caller` may use `session`: it is new (now bound to the caller) or already the caller's."""
        with self._lock:
            owner = self._owners.setdefault(session, caller)
            self._remember(self._owners, session, owner)
        return hmac.compare_digest(owner, caller)

    def started(self, session: str, event: str, caller: str) -> None:
        """`caller` started `event` in `session` (Gradio's answer to a queue join)."""
        with self._lock:
            self._remember(self._events, event, caller)
            self._remember(self._joined, session, None)

    def owns_event(self, event: str, caller: str) -> bool:
        with self._lock:
            owner = self._events.get(event)
        return owner is not None and hmac.compare_digest(owner, caller)

    def joined(self, session: str) -> bool:
        with self._lock:
            return session in self._joined


def caller_of(cookies: dict[str, str]) -> str:
    """Who sends a request: this browser's cookie and every Gradio login token it carries, as one digest."""
    parts = [cookies.get(COOKIE, "")] + sorted(v for k, v in cookies.items() if k.startswith("access-token"))
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


def _valid_cookie(value: str | None) -> bool:
    return bool(value) and 20 <= len(value) <= 64 and value.replace("-", "").replace("_", "").isalnum()


def _refused(status: int, text: str) -> PlainTextResponse:
    return PlainTextResponse(text + "\n", status_code=status)


def _json_object(body: bytes) -> dict | None:
    try:
        sent = json.loads(body or b"{}")
    except (ValueError, RecursionError):  # malformed, or nested deeper than the parser goes
        return None
    return sent if isinstance(sent, dict) else None


def _utf8(value) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class SessionBinding:
    """ASGI middleware; see the module docstring. `handlers()` gives the page's handler indexes (fn_index)."""

    def __init__(self, app, owners: SessionOwners | None = None, handlers: Callable[[], set[int]] | None = None):
        self.app = app
        self.owners = owners or SessionOwners()
        self.handlers = handlers

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        conn = HTTPConnection(scope)
        cookies = dict(conn.cookies)
        if not _valid_cookie(cookies.get(COOKIE)):
            cookies[COOKIE] = secrets.token_urlsafe(24)
            send = _setting_cookie(send, cookies[COOKIE])
        caller, path = caller_of(cookies), scope["path"].rstrip("/") or "/"
        session, sent = conn.query_params.get("session_hash"), None
        if scope["path"].startswith(HEARTBEAT):
            session = scope["path"][len(HEARTBEAT):].strip("/") or session
        if scope["method"] == "POST" and path in (JOIN, CANCEL):
            body = await read_body(receive)
            receive = replay(body, receive)
            sent = _json_object(body)
            if sent is None:
                return await _refused(400, "Bad request: the body must be a JSON object")(scope, receive, send)
            session = sent.get("session_hash") if isinstance(sent.get("session_hash"), str) else None
        refusal = self._refusal(path, session, sent, caller)
        if refusal is not None:
            return await refusal(scope, receive, send)
        if path == JOIN:
            send = self._recording(send, session, caller)
        return await self.app(scope, receive, send)

    def _refusal(self, path: str, session: str | None, sent: dict | None, caller: str):
        if session and not self.owners.claim(session, caller):
            return _refused(403, "Refused: this session belongs to another browser tab; reload the page to start "
                                 "your own")
        if path == DATA and not (session and self.owners.joined(session)):
            return _refused(404, "Not found: no answer of this tab is waiting; reload the page")
        if path == JOIN and not _utf8(sent):  # Gradio would take it, then fail to send any answer that echoes it
            return _refused(400, "Bad request: the text is not valid Unicode (a lone surrogate); send UTF-8 text")
        if path == JOIN and self.handlers is not None:
            index = sent.get("fn_index")
            if not isinstance(index, int) or isinstance(index, bool) or index not in self.handlers():
                return _refused(400, "Bad request: fn_index does not name one of this page's handlers")
        if path == CANCEL and not (isinstance(sent.get("event_id"), str)
                                   and self.owners.owns_event(sent["event_id"], caller)):
            return _refused(403, "Refused: that answer was not started by this browser tab")
        return None

    def _recording(self, send, session: str | None, caller: str):
        """Reads Gradio's answer to a join ({"event_id": ...}) and records the event as the caller's."""
        chunks: list[bytes] = []
        ok = False

        async def sending(message):
            nonlocal ok
            if message["type"] == "http.response.start":
                ok = message["status"] == 200
            elif message["type"] == "http.response.body" and ok and session:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    answer = _json_object(b"".join(chunks))
                    if answer and isinstance(answer.get("event_id"), str):
                        self.owners.started(session, answer["event_id"], caller)
            await send(message)

        return sending


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
