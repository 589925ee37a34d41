"""One ASGI middleware in front of the page and the API: only this machine's names, no foreign sites, none
of what a chat page does not need, and in LAN mode nothing without credentials.

In order, for every HTTP or WebSocket request:
1. `Host` must name this machine, with the port (localhost, 127.0.0.1, [::1], the bound address; in LAN
   mode also the machine's LAN addresses and host name): a DNS-rebinding page gets 403.
2. `Origin`, when sent, must be one of those hosts on this port: a foreign site's script gets 403.
3. Closed routes answer 404: uploads, the run routes that bypass the queue, files by path (the
   `/gradio_api/file=` open-redirect advisory), the proxy, streaming inputs, monitoring, vibe editing.
4. LAN mode: /v1 needs the API key (as the API router's own dependency does); everything else needs a
   Gradio login, except what the login page itself loads. Failed logins and keys are slowed down per address
   and user name (webui/throttle.py): 429 with Retry-After. The login page does not carry the page's API
   description (Gradio embeds it for everyone; here only a logged-in page gets it).
5. Logout is a POST from this site's own page (an `Origin` of this machine), and ends only the caller's login:
   Gradio's GET /logout ended every login of that user name, and any site could make a browser call it.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse

from .asgi import read_body, replay
from .auth import Access, refused_key_body
from .throttle import FailureThrottle

CLOSED = ("/gradio_api/upload", "/gradio_api/process_recording", "/gradio_api/run/", "/gradio_api/api/",
          "/gradio_api/file=", "/gradio_api/file/", "/gradio_api/proxy=", "/gradio_api/stream/",
          "/gradio_api/custom_component/", "/gradio_api/dev/", "/gradio_api/vibe", "/gradio_api/undo-vibe",
          "/gradio_api/mcp", "/gradio_api/component_server", "/monitoring",
          # Gradio's REST calls: the page uses the queue (/queue/join); these map an event id to its session
          # by themselves (a second guest could read or end someone's answer) and 500 on missing keys
          "/gradio_api/call/",
          # run history (turned off) and the progress of uploads (closed)
          "/gradio_api/run-history", "/gradio_api/runs", "/gradio_api/upload_progress")
# What Gradio's login page loads before anyone logs in (the routes that need a login check it themselves).
LOGIN_PAGE = frozenset({"/", "/login", "/login/", "/logout", "/config", "/config/", "/favicon.ico", "/theme.css",
                        "/robots.txt", "/manifest.json", "/gradio_api/theme.css", "/gradio_api/login_check",
                        "/gradio_api/login_check/", "/gradio_api/info", "/gradio_api/info/"})
LOGIN_PAGE_PREFIXES = ("/assets/", "/static/", "/svelte/", "/pwa_icon")
# The routes the installed Gradio serves that stay open and take no one's session or event id (read in Gradio
# 6.31's routes.py). With CLOSED and sessions.SESSION_ROUTES they cover every route: tests/webui/test_security_routes.py
# fails when an upgrade adds one, so a new route is looked at before it is served.
NO_SESSION = frozenset({
    "/", "/config", "/login", "/logout", "/favicon.ico", "/manifest.json", "/robots.txt", "/theme.css",
    "/openapi.json", "/assets/{path:path}", "/static/{path:path}", "/svelte/{path:path}", "/pwa_icon",
    "/pwa_icon/{size}", "/gradio_api/app_id", "/gradio_api/info", "/gradio_api/login_check", "/gradio_api/token",
    "/gradio_api/user", "/gradio_api/theme.css", "/gradio_api/startup-events", "/gradio_api/queue/status",
    "/gradio_api/openapi.json", "/gradio_api/deep_link",
    "/gradio_api/reset",  # takes an event id and does nothing with it (Gradio: "No-op ... handled by /cancel")
})


def machine_hosts(bound: str, lan: bool, lan_addresses: Iterable[str] = ()) -> frozenset[str]:
    """The names this server answers to (lower case, IPv6 without brackets)."""
    names = {"localhost", "127.0.0.1", "::1"}
    if bound not in ("", "0.0.0.0", "::"):
        names.add(bound.lower().strip("[]"))
    if lan:
        names.update(a.lower() for a in lan_addresses)
        hostname = socket.gethostname().lower()
        if hostname:
            names.update({hostname, f"{hostname}.local"})
    return frozenset(names)


def _host_port(value: str, default_port: int) -> tuple[str, int] | None:
    value = value.strip().lower()
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port = rest[1:]
    else:
        host, _, port = value.partition(":")
    if not port:
        return host.rstrip("."), default_port
    return (host.rstrip("."), int(port)) if port.isascii() and port.isdigit() else None


class GradioSessions:
    """Who is logged in, from Gradio's own session cookie. Filled by `attach` once the page is mounted;
    until then nobody is (fail closed)."""

    def __init__(self):
        self._app = None

    def attach(self, web_app) -> None:
        from gradio.routes import App
        from starlette.routing import Mount

        for route in web_app.routes:
            if isinstance(route, Mount) and isinstance(route.app, App):
                self._app = route.app
                return
        raise RuntimeError("no Gradio app is mounted on this web app")

    def _cookie_names(self) -> tuple[str, ...]:
        app = self._app
        return (f"access-token-{app.cookie_id}", f"access-token-unsecure-{app.cookie_id}") if app else ()

    def user(self, cookies: dict[str, str]) -> str | None:
        for name in self._cookie_names():
            token = cookies.get(name)
            if token and token in self._app.tokens:
                return self._app.tokens[token]
        return None

    def logout(self, cookies: dict[str, str]) -> tuple[str, ...]:
        """End this browser's login only (its own token); the cookie names to clear."""
        for name in self._cookie_names():
            self._app.tokens.pop(cookies.get(name, ""), None)
        return self._cookie_names()


class Guard:
    """The middleware (added last in web_app's `middleware`, so it runs first)."""

    def __init__(self, app, *, access: Access, hosts: frozenset[str], port: int,
                 sessions: GradioSessions | None = None, throttle: FailureThrottle | None = None,
                 origins: frozenset[str] = frozenset()):
        self.app, self.access, self.hosts, self.port = app, access, hosts, port
        self.origins = origins  # other sites' pages allowed to call the API (--allow-origin; CORS in webui/cors.py)
        self.sessions = sessions or GradioSessions()
        self.throttle = throttle or FailureThrottle()

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        conn = HTTPConnection(scope)
        path = scope["path"]
        refusal = self._refusal(conn, path)
        if refusal is None and scope["type"] == "http":
            route = path.rstrip("/") or "/"
            if route == "/logout":
                return await self._logout(conn, scope, receive, send)
            if self.access.lan and route == "/login" and scope["method"] == "POST":
                return await self._login(scope, receive, send)
            if self.access.lan and route == "/" and scope["method"] == "GET" and \
                    self.sessions.user(conn.cookies) is None:
                send = _without_api_info(send)
        if refusal is None:
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})
        return await refusal(scope, receive, send)

    def _allowed(self, hostport: str, default_port: int) -> bool:
        parsed = _host_port(hostport, default_port)
        return parsed is not None and parsed[0] in self.hosts and parsed[1] == self.port

    def _refusal(self, conn: HTTPConnection, path: str):
        api = path == "/v1" or path.startswith("/v1/")
        host = conn.headers.get("host", "")
        if not self._allowed(host, 80):
            return _forbidden(api, f"the Host header {host[:100]!r} does not name this machine (DNS rebinding "
                              "protection): open the address the app printed, or start it with --allow-host NAME "
                              "for another name of this machine (host.docker.internal for a client in Docker)",
                              "host_not_allowed")
        origin = conn.headers.get("origin")
        if origin is not None and not self._own_origin(origin) and not (api and origin.lower() in self.origins):
            return _forbidden(api, f"requests from another site ({origin[:100]}) are not accepted: start the app "
                              "with --allow-origin ORIGIN to let that site's pages call the API",
                              "origin_not_allowed")
        if api and self.access.lan and conn.scope.get("method") == "OPTIONS" and origin is not None \
                and "access-control-request-method" in conn.headers:
            return None  # an allowed site's preflight carries no key (browsers never send one): CORS answers it
        if path.startswith(CLOSED):
            return PlainTextResponse("Not found: this chat app does not serve that route\n", status_code=404)
        if not self.access.lan:
            return None
        if api:
            return self._key_refusal(conn)
        if path in LOGIN_PAGE or path.startswith(LOGIN_PAGE_PREFIXES):
            return None
        if self.sessions.user(conn.cookies) is not None:
            return None
        return PlainTextResponse("Log in first: open the page and enter the user name and password you were "
                                 "given\n", status_code=401)

    def _own_origin(self, origin: str) -> bool:
        try:
            parts = urlsplit(origin)
        except ValueError:  # "http://[::1" and the like
            return False
        default = 443 if parts.scheme == "https" else 80
        return parts.scheme in ("http", "https") and self._allowed(parts.netloc, default)

    def _key_refusal(self, conn: HTTPConnection):
        address = _address(conn.scope)
        wait = self.throttle.wait_s(address)
        if wait:
            body = {"error": {"message": f"Too many wrong API keys from this address: try again in {wait} s",
                              "type": "rate_limit_error", "param": None, "code": "too_many_failures"}}
            return JSONResponse(body, status_code=429, headers={"Retry-After": str(wait)})
        if self.access.key_ok(conn.headers.get("authorization", "")):
            self.throttle.succeeded(address)
            return None
        self.throttle.failed(address)
        return JSONResponse(refused_key_body(), status_code=401, headers={"WWW-Authenticate": "Bearer"})

    async def _login(self, scope, receive, send):
        """Gradio's own login, behind the failure throttle (the user name is read from the form)."""
        body = await read_body(receive)
        user = await _form_user(scope, body)
        address = _address(scope)
        wait = self.throttle.wait_s(address, user)
        if wait:
            refusal = PlainTextResponse(f"Too many failed logins: try again in {wait} s\n", status_code=429,
                                        headers={"Retry-After": str(wait)})
            return await refusal(scope, receive, send)
        status = {}

        async def sending(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        await self.app(scope, replay(body, receive), sending)
        if status.get("code") == 200:
            self.throttle.succeeded(address, user)
        elif status.get("code") in (400, 401):
            self.throttle.failed(address, user)

    async def _logout(self, conn: HTTPConnection, scope, receive, send):
        if scope["method"] != "POST":
            answer = PlainTextResponse("Log out with the page's Log out button (a POST from this page)\n",
                                       status_code=405, headers={"Allow": "POST"})
        elif conn.headers.get("origin") is None:  # a foreign Origin was refused already; none at all: not a page
            answer = PlainTextResponse("Refused: log out from the page itself\n", status_code=403)
        else:
            answer = JSONResponse({"success": True})
            for name in self.sessions.logout(conn.cookies):
                answer.delete_cookie(name, path="/")
        return await answer(scope, receive, send)


def _forbidden(api: bool, reason: str, code: str):
    """A 403: in OpenAI's error shape under /v1 (SDKs show its message), plain text for the page's routes."""
    if api:
        return JSONResponse({"error": {"message": f"Refused: {reason}", "type": "permission_error", "param": None,
                                       "code": code}}, status_code=403)
    return PlainTextResponse(f"Refused: {reason}\n", status_code=403)


def _address(scope) -> str:
    client = scope.get("client")
    return client[0] if client else ""


async def _form_user(scope, body: bytes) -> str | None:
    try:
        form = await Request(scope, replay(body, _nothing)).form()
    except Exception:  # noqa: BLE001 - a malformed form: Gradio answers it; no user name to count against
        return None
    try:
        user = form.get("username")
        return user.strip() if isinstance(user, str) else None
    finally:
        await form.close()


async def _nothing():
    return {"type": "http.disconnect"}


_API_INFO = re.compile(rb"window\.gradio_api_info = .*?;</script>", re.DOTALL)


def _without_api_info(send):
    """The login page as Gradio renders it, less `window.gradio_api_info` (the handlers, their parameters and
    every model id): what /gradio_api/info answers only after a login."""
    held: dict = {}
    chunks: list[bytes] = []

    async def sending(message):
        if message["type"] == "http.response.start":
            held["start"] = message
            return None
        if message["type"] != "http.response.body":
            return await send(message)
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return None
        body = _API_INFO.sub(b'window.gradio_api_info = {"named_endpoints": {}, "unnamed_endpoints": {}};</script>',
                             b"".join(chunks))
        start = dict(held["start"])
        start["headers"] = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"] + \
            [(b"content-length", str(len(body)).encode())]
        await send(start)
        return await send({"type": "http.response.body", "body": body, "more_body": False})

    return sending
