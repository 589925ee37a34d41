"""The web server's connections send each write at once (TCP_NODELAY). With Nagle's algorithm on, a response's
second write waits for the client's delayed ACK: every request took 44 ms more here, and the first tokens of a
streamed answer arrived in one lump."""

from __future__ import annotations

import socket
import time

import httpx
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from webui.server import free_port, start


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/words")
    def words():
        return StreamingResponse((f"{w} " for w in ["one", "two", "three"]), media_type="text/plain")

    return app


def _server_side_nodelay(running) -> list[int]:
    sockets = [c.transport.get_extra_info("socket") for c in running._server.server_state.connections]
    return [s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in sockets if s is not None]


def test_every_connection_the_server_accepts_has_nagle_turned_off():
    running = start(_app(), "127.0.0.1", free_port("127.0.0.1", 7950))
    try:
        with httpx.Client(timeout=10) as client:
            with client.stream("GET", running.url + "/words") as answer:
                assert answer.status_code == 200
                flags = []
                deadline = time.monotonic() + 5
                while not flags and time.monotonic() < deadline:  # the server registers the connection itself
                    flags = _server_side_nodelay(running)
                    time.sleep(0.01)
                assert "".join(answer.iter_text()) == "one two three "
        assert flags and all(flags), f"TCP_NODELAY on the server's side of the connection: {flags}"
    finally:
        running.close()
