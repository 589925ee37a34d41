"""One ASGI middleware in front of the page and the API: only this machine's names, no foreign sites, none
of what a chat page does not need, and in LAN mode nothing without credentials.

In order, for every HTTP or WebSocket request:
1. `Host` must name this machine, with the port (localhost, 127.0.0.1, [::1], the bound address; in LAN
   mode also the machine's LAN addresses and host name): a DNS-rebinding page gets 403.
2. `Origin`, when sent, must be one of those hosts on this port: a foreign site's script gets 403.
3. Closed routes answer 404: uploads, the run routes that bypass the queue, files by path (the
   `/gradio_api/file=` open-redirect advisory), the proxy, streaming inputs, monitoring, vibe editing.
4. LAN mode: /v1 needs the API key (as the API router's own dependency does); everything else needs a
   Gradio login, except what the login page itself loads.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, PlainTextResponse

from .auth import Access, refused_key_body

CLOSED = ("/gradio_api/upload", "/gradio_api/process_recording", "/gradio_api/run/", "/gradio_api/api/",
          "/gradio_api/file=", "/gradio_api/file/", "/gradio_api/proxy=", "/gradio_api/stream/",
          "/gradio_api/custom_component/", "/gradio_api/dev/", "/gradio_api/vibe", "/gradio_api/undo-vibe",
          "/gradio_api/mcp", "/gradio_api/component_server", "/monitoring")
# What Gradio's login page loads before anyone logs in (the routes that need a login check it themselves).
LOGIN_PAGE = frozenset({"/", "/login", "/login/", "/logout", "/config", "/config/", "/favicon.ico", "/theme.css",
                        "/robots.txt", "/manifest.json", "/gradio_api/theme.css", "/gradio_api/login_check",
                        "/gradio_api/login_check/", "/gradio_api/info", "/gradio_api/info/"})
LOGIN_PAGE_PREFIXES = ("/assets/", "/static/", "/svelte/", "/pwa_icon")


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

    def user(self, cookies: dict[str, str]) -> str | None:
        app = self._app
        if app is None:
            return None
        for name in (f"access-token-{app.cookie_id}", f"access-token-unsecure-{app.cookie_id}"):
            token = cookies.get(name)
            if token and token in app.tokens:
                return app.tokens[token]
        return None


class Guard:
    """The middleware (added last in web_app's `middleware`, so it runs first)."""

    def __init__(self, app, *, access: Access, hosts: frozenset[str], port: int,
                 sessions: GradioSessions | None = None):
        self.app, self.access, self.hosts, self.port = app, access, hosts, port
        self.sessions = sessions or GradioSessions()

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        conn = HTTPConnection(scope)
        refusal = self._refusal(conn, scope["path"])
        if refusal is None:
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})
        return await refusal(scope, receive, send)

    def _allowed(self, hostport: str, default_port: int) -> bool:
        parsed = _host_port(hostport, default_port)
        return parsed is not None and parsed[0] in self.hosts and parsed[1] == self.port

    def _refusal(self, conn: HTTPConnection, path: str):
        host = conn.headers.get("host", "")
        if not self._allowed(host, 80):
            return PlainTextResponse(f"Refused: the Host header {host!r} does not name this machine (DNS rebinding "
                                     "protection); open the address the app printed\n", status_code=403)
        origin = conn.headers.get("origin")
        if origin is not None:
            try:
                parts = urlsplit(origin)
            except ValueError:  # "http://[::1" and the like
                parts = urlsplit("")
            default = 443 if parts.scheme == "https" else 80
            if parts.scheme not in ("http", "https") or not self._allowed(parts.netloc, default):
                return PlainTextResponse(f"Refused: requests from another site ({origin}) are not accepted\n",
                                         status_code=403)
        if path.startswith(CLOSED):
            return PlainTextResponse("Not found: this chat app does not serve that route\n", status_code=404)
        if not self.access.lan:
            return None
        if path == "/v1" or path.startswith("/v1/"):
            if self.access.key_ok(conn.headers.get("authorization", "")):
                return None
            return JSONResponse(refused_key_body(), status_code=401, headers={"WWW-Authenticate": "Bearer"})
        if path in LOGIN_PAGE or path.startswith(LOGIN_PAGE_PREFIXES):
            return None
        if self.sessions.user(conn.cookies) is not None:
            return None
        return PlainTextResponse("Log in first: open the page and enter the user name and password you were "
                                 "given\n", status_code=401)
