"""Every route the installed Gradio serves is either closed, bound to its session and event (webui/sessions.py),
or reviewed as taking no one's session (security.NO_SESSION). A route a Gradio upgrade adds fails here until
someone has looked at it."""

from __future__ import annotations

import gradio as gr
from starlette.routing import Mount

from webui.security import CLOSED, NO_SESSION
from webui.server import web_app
from webui.sessions import SESSION_ROUTES


def _paths(routes, prefix=""):
    for route in routes:
        if isinstance(route, Mount):
            yield from _paths(route.routes, prefix + route.path)
        elif hasattr(route, "path"):
            yield prefix + route.path
        else:  # FastAPI's included router: its own routes under its prefix
            yield from _paths(route.original_router.routes, prefix + (route.include_context.prefix or ""))


def test_every_route_the_installed_gradio_serves_is_closed_bound_or_reviewed():
    with gr.Blocks() as blocks:
        gr.Textbox()
    paths = {p.rstrip("/") or "/" for p in _paths(web_app(blocks).routes)}
    assert "/gradio_api/queue/join" in paths and "/gradio_api/call/{api_name}/{event_id}" in paths  # walked them all
    unreviewed = sorted(p for p in paths if not (p.startswith(CLOSED) or p in SESSION_ROUTES or p in NO_SESSION
                                                  or p.startswith("/v1/")))
    assert unreviewed == [], f"new routes in gradio {gr.__version__}: close them, bind them or review them"
    for path in SESSION_ROUTES:
        assert path in paths and not path.startswith(CLOSED)
    assert all(p in paths for p in NO_SESSION)  # a reviewed route that is gone: the list is out of date
