"""The Gradio page: a streaming chat, a Stop button that stops the engine, what runs where."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr

from models.engines import Sampling
from models.errors import AppError

from .auth import Access
from .chat import DEFAULT_SYSTEM_PROMPT, ChatService, Conversation

HOST_ONLY = "Only the host can switch models"

CSS = """
.status-note {border-left: 4px solid #d97706; padding: 0.5em 1em; background: rgba(217,119,6,0.08);}
footer {display: none !important;}
"""
# System fonts only: the page must look right with no internet (Gradio's default theme pulls Google Fonts).
THEME = gr.themes.Soft(font=[gr.themes.Font("system-ui"), "sans-serif"],
                       font_mono=[gr.themes.Font("ui-monospace"), "monospace"])


@dataclass(frozen=True)
class PageInfo:
    title: str
    running: str  # "SmolLM2-135M on CPU (AMD EPYC) with OpenVINO GenAI"
    notices: tuple[str, ...] = ()
    machine_rows: tuple[tuple[str, str], ...] = ()  # "This PC" table
    device_rows: tuple[tuple[str, ...], ...] = ()
    explanation: str = ""  # markdown: why this model, what else was considered
    join_url: str = ""  # LAN mode: the address a phone opens (shown with a QR code)


@dataclass(frozen=True)
class Chooser:
    """Lets the page re-rank with other preferences, and switch to the new first choice."""

    explain: Callable[[str, str, str], str]  # (mode, device, model id or "auto") -> markdown
    # (mode, device, model, progress callback) -> (running text, notices); fetches what is missing
    switch: Callable[..., tuple[str, tuple[str, ...]]]
    models: tuple[tuple[str, str], ...] = ()  # (label, id) for the model picker


def _running(text: str) -> str:
    return f"Running **{text}**."


def _notices(notices: tuple[str, ...]):
    return gr.update(value="\n\n".join(notices), visible=bool(notices))


def build_app(service: ChatService, info: PageInfo, chooser: Chooser | None = None,
              access: Access | None = None) -> gr.Blocks:
    """In LAN mode (`access.lan`) the page's config holds no machine description and no switch controls are
    shown: a load event fills and shows them for a host (`access.is_admin`), and the handlers refuse guests."""
    access = access or Access()
    guarded = access.lan  # host-only parts start empty and hidden
    with gr.Blocks(title=info.title) as app:
        gr.Markdown(f"# {info.title}")
        running = gr.Markdown(_running(info.running), elem_id="running")
        notices = gr.Markdown("\n\n".join(info.notices), visible=bool(info.notices),
                              elem_classes=["status-note"], elem_id="notice")
        conversation = gr.State(Conversation())
        with gr.Tab("Chat"):
            chatbot = gr.Chatbot(label="Chat", height=480, elem_id="chatbot", feedback_options=None,
                                 buttons=["copy"])
            with gr.Row():
                box = gr.Textbox(placeholder="Ask something and press Enter", show_label=False, scale=8,
                                 elem_id="prompt", autofocus=True)
                send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
                stop = gr.Button("Stop", variant="stop", scale=1, elem_id="stop")
            with gr.Accordion("Settings", open=False):
                max_tokens = gr.Slider(16, 2048, value=512, step=16, label="Longest answer (tokens)")
                temperature = gr.Slider(0.0, 1.5, value=0.0, step=0.05,
                                        label="Temperature (0 = always the most likely word)")
                system = gr.Textbox(value=DEFAULT_SYSTEM_PROMPT, label="System prompt", lines=2)
            clear = gr.Button("New chat", size="sm")
            if info.join_url:
                from .server import qr_svg

                with gr.Accordion("Join from a phone", open=False):
                    gr.HTML(f"<div id='join'>{qr_svg(info.join_url)}<p>{info.join_url}</p></div>")
        machine_rows = [] if guarded else [list(r) for r in info.machine_rows]
        device_rows = [] if guarded else [list(r) for r in info.device_rows]
        with gr.Tab("This PC", visible=not guarded) as pc_tab:
            machine = gr.Dataframe(value=machine_rows, headers=["", "this PC"], interactive=False,
                                   elem_id="machine")
            devices = gr.Dataframe(value=device_rows, headers=["device", "kind", "found", "details / why not"],
                                   interactive=False, elem_id="devices")
        with gr.Tab("Why this model", visible=not guarded) as why_tab:
            if chooser is not None:
                with gr.Row(visible=not guarded) as switch_row:
                    mode = gr.Radio(["auto", "fastest", "efficient"], value="auto", label="Prefer",
                                    info="auto: efficient on battery, fastest on AC power", elem_id="prefer")
                    device = gr.Dropdown(["auto", "cpu", "gpu", "npu", "dml"], value="auto", label="Device",
                                         elem_id="device")
                    model = gr.Dropdown(list(chooser.models), value="auto", label="Model", elem_id="model",
                                        info="a model that is not here yet is downloaded first (size shown)")
                    switch = gr.Button("Switch to the first choice", elem_id="switch")
            chosen = info.explanation or "The model was chosen by hand."
            explanation = gr.Markdown("" if guarded else chosen, elem_id="explanation")

        def respond(message: str, conv: Conversation, limit: float, temp: float, system_prompt: str,
                    request: gr.Request):
            conv = conv.owned()
            owner = conv.owner
            try:
                sampling = Sampling(max_new_tokens=int(limit), temperature=float(temp))
            except (AppError, TypeError, ValueError, OverflowError) as err:
                gr.Warning(f"Settings: {err}")
                yield conv.display(), conv, message
                return
            for update in service.respond(owner, conv, message, sampling, system_prompt):
                if update.position:  # waiting behind other people's answers (the page and the API share one queue)
                    waiting = conv.display() + [{"role": "user", "content": message.strip()}, {
                        "role": "assistant", "content": f"Waiting: {update.position} "
                        f"answer{'s' if update.position > 1 else ''} before yours..."}]
                    yield waiting, conv, ""
                    continue
                if update.error:
                    gr.Warning(update.error)
                    yield update.conversation.display(), update.conversation, update.give_back
                    return
                yield update.conversation.display(), update.conversation, ""

        def stop_mine(conv: Conversation) -> None:
            if conv.owner:  # the owner secret lives in this tab's server-side state: nobody else's Stop reaches it
                service.cancel(conv.owner)

        inputs = [box, conversation, max_tokens, temperature, system]
        outputs = [chatbot, conversation, box]
        # Gradio hands every question to the chat service at once; its own queue orders them (and the
        # API's), shows each waiting user their place, and refuses politely when full.
        limit = service.max_queue + 1
        box.submit(respond, inputs, outputs, api_name="chat", concurrency_limit=limit)
        send.click(respond, inputs, outputs, api_name=False, concurrency_limit=limit)
        # Every event goes through the queue (queue=False events would be sent to /gradio_api/run/, which
        # webui/security.py closes); each event has its own concurrency, so Stop never waits behind an answer.
        stop.click(stop_mine, [conversation], None, api_name="stop")
        clear.click(lambda: ([], Conversation(), ""), None, outputs, api_name=False)
        if guarded:
            def for_user(request: gr.Request):
                host = access.is_admin(request.username)
                shown = gr.update(visible=host)
                updates = [shown, shown, gr.update(value=[list(r) for r in info.machine_rows] if host else []),
                           gr.update(value=[list(r) for r in info.device_rows] if host else []),
                           gr.update(value=chosen if host else "")]
                return updates + ([shown] if chooser is not None else [])

            app.load(for_user, None, [pc_tab, why_tab, machine, devices, explanation]
                     + ([switch_row] if chooser is not None else []), api_name=False)
        if chooser is not None:
            def explain_for_host(m: str, d: str, mid: str, request: gr.Request) -> str:
                if not access.is_admin(request.username):
                    raise gr.Error(HOST_ONLY, print_exception=False)
                return chooser.explain(m, d, mid)

            def do_switch(m: str, d: str, mid: str, request: gr.Request, progress=gr.Progress()):
                if not access.is_admin(request.username):  # checked before anything is ranked or fetched
                    raise gr.Error(HOST_ONLY, print_exception=False)

                def report(p) -> None:
                    progress(p.done_bytes / p.total_bytes, desc=f"Downloading: {p.line()}")

                try:
                    text, new_notices = chooser.switch(m, d, mid, report)
                except Exception as err:  # noqa: BLE001 - AppError or an engine's own error: tell the user
                    raise gr.Error(str(err), print_exception=False) from None
                gr.Info(f"Now running {text}")
                return _running(text), _notices(new_notices), chooser.explain(m, d, mid)

            choices = [mode, device, model]
            for control in choices:
                control.change(explain_for_host, choices, explanation, api_name=False)
            switch.click(do_switch, choices, [running, notices, explanation], api_name="switch",
                         concurrency_limit=1)
    return app


def launch_kwargs() -> dict:
    return {"theme": THEME, "css": CSS}
