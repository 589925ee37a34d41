"""CORS for the API, for the sites the host names (`--allow-origin`), never `*`: a page on such a site may call /v1
from a browser (its preflight answered, its answers readable); the page's own routes get no CORS headers. Starlette's
CORSMiddleware does the work; the Guard (webui/security.py) has already refused every other origin."""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware


class ApiCors:
    def __init__(self, app, *, origins: frozenset[str]):
        self.app = app
        self.cors = CORSMiddleware(app, allow_origins=sorted(origins), allow_methods=["GET", "POST", "OPTIONS"],
                                   allow_headers=["Authorization", "Content-Type"], max_age=600)

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == "/v1" or path.startswith("/v1/")):
            return await self.cors(scope, receive, send)
        return await self.app(scope, receive, send)
