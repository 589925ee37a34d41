"""The Gradio page: a title, what runs, the notices, then one tab per module of webui/tabs/ (Chat, This PC, Why this
model, Benchmark). Each tab lays itself out and wires its own events; this module puts them together and, in LAN mode,
fills the host-only tabs for a host only.

In LAN mode (`access.lan`) the page's config holds no machine description and no switch controls are shown: a load
event fills and shows them for a host (`access.is_admin`), and their handlers refuse guests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from app.serving import ServingQueue
from models.startup import Running

from . import render
from .auth import Access
from .bench_tab import BenchTab
from .chat import model_defaults
from .tab import TabState
from .tabs import benchmark, chat, machine, why
from .views import DeviceRow

# The chats are kept in this browser's localStorage under this key. Gradio encrypts them with this secret,
# which the page's own config carries: it keeps the value opaque, not private. A fixed secret lets the chats
# outlive a restart of the app.
STORAGE_KEY = "phi3pc-chats"
STORAGE_SECRET = "phi3pc-chats-in-this-browser"

CSS = (Path(__file__).parent / "page.css").read_text(encoding="utf-8")
# System fonts only: the page must look right with no internet (Gradio's default theme pulls Google Fonts).
THEME = gr.themes.Soft(font=[gr.themes.Font("system-ui"), "sans-serif"],
                       font_mono=[gr.themes.Font("ui-monospace"), "monospace"])


@dataclass(frozen=True)
class PageInfo:
    title: str
    running: Running
    notices: tuple[str, ...] = ()
    machine_rows: tuple[tuple[str, str], ...] = ()  # "This PC" summary
    devices: tuple[DeviceRow, ...] = ()
    explanation: str = ""  # HTML: why this model, what else was considered
    join_url: str = ""  # LAN mode: the address a phone opens (shown with a QR code)


def build_page(queue: ServingQueue, info: PageInfo, models: why.Models | None = None, access: Access | None = None,
               bench: BenchTab | None = None) -> gr.Blocks:
    """The page on `queue` (shared with the API). With `models` the Why tab can switch; with `bench`
    (webui/bench_tab.py) the page has a Benchmark tab, host-only like the machine's tabs."""
    access = access or Access()
    guarded = access.lan  # host-only parts start empty and hidden
    defaults = model_defaults(queue.engine)
    with gr.Blocks(title=info.title) as page:
        gr.Markdown(f"# {info.title}", elem_id="title")
        running = gr.Markdown(why.running_text(info.running.text()), elem_id="running")
        notices = gr.HTML(render.notice(info.notices), elem_id="notice", padding=False)
        tab = gr.State(TabState())  # server-side, a copy per tab: its chat and the secret its Stop needs
        saved = gr.BrowserState({"v": 1, "chats": []}, storage_key=STORAGE_KEY, secret=STORAGE_SECRET)
        with gr.Tab("Chat"):
            chat_ui = chat.build(defaults, access, info.join_url)
        pc = machine.build(info.machine_rows, info.devices, info.running.device_id, guarded)
        reasons = why.build(info.explanation, models, guarded)
        bench_ui = benchmark.build(guarded) if bench is not None else None
        chat.wire(page, queue, chat_ui, tab, saved, defaults)
        if bench_ui is not None:
            benchmark.wire(bench, access, bench_ui)
        if guarded:
            _for_hosts(page, access, pc, reasons, bench_ui)
        if models is not None:
            why.wire(models, access, reasons, tab, running, notices, chat_ui.send, pc.devices, info.devices)
    return page


def _for_hosts(page: gr.Blocks, access: Access, pc: machine.MachineTab, reasons: why.WhyTab,
               bench_ui: benchmark.BenchmarkTab | None) -> None:
    """LAN mode: on load, a host's page shows and fills the host-only tabs; a guest's stays without them."""
    host_tabs = [pc.tab, reasons.tab] + ([bench_ui.tab] if bench_ui is not None else [])
    controls = [reasons.controls] if reasons.controls is not None else []

    def for_user(request: gr.Request):
        host = access.is_admin(request.username)
        shown = gr.update(visible=host)
        return ([shown] * len(host_tabs) + [gr.update(value=pc.machine_html if host else ""),
                                            gr.update(value=pc.devices_html if host else ""),
                                            gr.update(value=reasons.chosen if host else "")]
                + [shown] * len(controls))

    page.load(for_user, None, [*host_tabs, pc.machine, pc.devices, reasons.explanation, *controls], api_name=False)


def launch_kwargs() -> dict:
    return {"theme": THEME, "css": CSS}
