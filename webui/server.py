"""Starting the web server: a free port near the one asked for, and the browser when there is a screen."""

from __future__ import annotations

import os
import socket
import sys
import webbrowser


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str, wanted: int, tries: int = 50) -> int:
    for port in range(wanted, wanted + tries):
        if port_is_free(host, port):
            return port
    raise OSError(f"ports {wanted}-{wanted + tries - 1} are all taken on {host}; pass --port")


def has_display() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def open_browser(url: str) -> bool:
    try:
        return webbrowser.open(url, new=2)
    except webbrowser.Error:
        return False


def lan_addresses() -> list[str]:
    """Addresses other machines on the network can use (read from this host, no traffic sent)."""
    import psutil

    found = []
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                found.append(a.address)
    return found


def qr_console(url: str) -> str:
    """A QR code of `url` in text (two rows of modules per line), for a phone to scan from the console."""
    import io

    import segno

    out = io.StringIO()
    segno.make(url, error="m").terminal(out=out, compact=True, border=2)
    return out.getvalue()


def qr_svg(url: str) -> str:
    """The same QR code as an inline SVG for the page."""
    import segno

    return segno.make(url, error="m").svg_inline(scale=4, border=2, title=url)


class Running:
    """The page and the API on one uvicorn server, in a background thread."""

    def __init__(self, server, thread, host: str, port: int):
        self._server, self._thread = server, thread
        self.host, self.port = host, port

    @property
    def url(self) -> str:
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{shown}:{self.port}"

    def close(self, timeout: float = 10.0) -> None:
        """Stop now: open streams (a browser's event stream, an API client) are dropped, not waited for;
        their cancellation at exit is expected, so uvicorn does not report it as an error."""
        import logging

        logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
        self._server.should_exit = True
        self._server.force_exit = True
        self._thread.join(timeout)


def web_app(blocks, *, routers=(), middleware=(), auth=None, theme=None, css=None,
            max_file_size: int = 1) -> object:
    """One FastAPI app: the API routers, then the Gradio page mounted at "/", with what a chat page does
    not need turned off (monitoring dashboard, SSR, MCP, run history; uploads capped at `max_file_size`)."""
    import gradio as gr
    from fastapi import FastAPI

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url="/v1/openapi.json", title="Phi-3 on this PC")
    for router in routers:
        app.include_router(router)
    for cls, kwargs in middleware:
        app.add_middleware(cls, **kwargs)
    return gr.mount_gradio_app(app, blocks, path="", auth=auth, enable_monitoring=False, ssr_mode=False,
                               mcp_server=False, run_history=False, max_file_size=max_file_size,
                               footer_links=[], theme=theme, css=css, show_error=True)


def start(app, host: str, port: int) -> Running:
    """Bind first (a port taken since it was checked raises OSError here, with the port named), then serve."""
    import threading

    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that name it, and the accepted
    # ones copy the listener's. With Nagle on, every response's second write waited for the client's delayed
    # ACK: 44 ms on each request, and the first streamed tokens arrived in one lump.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    from .slow_clients import TimedH11Protocol

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                                           timeout_graceful_shutdown=2, http=TimedH11Protocol))
    server.install_signal_handlers = lambda: None  # the app's own handlers stay in charge (Ctrl-C, SIGTERM)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="web-server", daemon=True)
    thread.start()
    import time

    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise OSError(f"the web server did not start on {host}:{port}")
        time.sleep(0.02)
    return Running(server, thread, host, port)
