"""What a request body may be, on every route: at most `--max-request-bytes` (413 before it is read into memory), and
under /v1 JSON whatever its Content-Type says (OpenAI parses the body as JSON; curl's `-d` sends a form type)."""

from __future__ import annotations

from fastapi.responses import JSONResponse, PlainTextResponse

from .api import ApiError
from .asgi import replay

DEFAULT_MAX_BODY = 1_000_000  # bytes, every route: text of about 250,000 tokens, more than the longest window (128K)


def _is_api(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes`, on any route (the API's and the page's), is answered
    413 before it is read into memory: the declared Content-Length is checked first, then the bytes as they
    arrive. Under /v1 the answer is in OpenAI's shape, elsewhere one line of text."""

    def __init__(self, app, max_bytes: int = DEFAULT_MAX_BODY):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await self._too_large(scope)(scope, receive, send)
        chunks, seen = [], 0
        while True:  # read whole here (at most max_bytes), so no route's own parser ever meets an endless body
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            if seen > self.max_bytes:
                return await self._too_large(scope)(scope, receive, send)
            if not message.get("more_body", False):
                break
        await self.app(scope, replay(b"".join(chunks), receive), send)

    def _too_large(self, scope):
        message = f"the request body is larger than {self.max_bytes} bytes (--max-request-bytes)"
        if _is_api(scope["path"]):
            return JSONResponse(ApiError(413, message, code="request_too_large").body(), status_code=413)
        return PlainTextResponse(f"Request body too large: {message}\n", status_code=413)


class JsonBodies:
    """ASGI middleware: a POST under /v1 is read as JSON whatever its Content-Type (absent, or a form type as curl's
    `-d` sends), as OpenAI reads it; a body that is not JSON is then the API's own clear 400."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("method") == "POST" and _is_api(scope["path"]):
            headers = [(k, v) for k, v in scope.get("headers") or [] if k != b"content-type"]
            scope = dict(scope, headers=[*headers, (b"content-type", b"application/json")])
        await self.app(scope, receive, send)
