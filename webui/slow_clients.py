"""Connections that send a request too slowly are closed.

uvicorn times out a keep-alive connection that sends nothing, but not one that sends a byte now and then:
twenty sockets dribbling one header byte a second held their places for as long as they liked. Here a
request's headers must arrive within `HEADERS_S` of the connection (or of the previous response), and its
body within `BODY_S` of the headers; otherwise the connection is closed (an app waiting on the body sees a
disconnect). Streaming answers are not affected: these clocks stop once the request is in.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADERS_S = 10.0
BODY_S = 60.0


class TimedH11Protocol(H11Protocol):
    headers_s = HEADERS_S
    body_s = BODY_S
    _deadline: asyncio.TimerHandle | None = None

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.headers_s)

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a request's headers came in: its body next, if it has one
            if self.conn.their_state is h11.SEND_BODY:
                self._arm(self.body_s)
            else:
                self._disarm()
        elif self._deadline is not None and self.conn.their_state is h11.DONE:
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm(self.headers_s + self.timeout_keep_alive)  # keep-alive's own timer ends an idle one sooner
