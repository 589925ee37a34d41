"""Two ASGI helpers the middlewares share: read a request body whole, and give it to the app once more."""

from __future__ import annotations


async def read_body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, rest):
    """An ASGI receive that gives `body` once, then the connection's own messages (a disconnect when it comes)."""
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await rest()

    return receive
