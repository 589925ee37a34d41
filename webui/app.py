"""The Gradio page: a streaming chat, a Stop button that stops the engine, what runs where."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from models.engines import Sampling

from .chat import DEFAULT_SYSTEM_PROMPT, ChatService, Conversation

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


def build_app(service: ChatService, info: PageInfo) -> gr.Blocks:
    with gr.Blocks(title=info.title) as app:
        gr.Markdown(f"# {info.title}\nRunning **{info.running}**.", elem_id="running")
        for notice in info.notices:
            gr.Markdown(notice, elem_classes=["status-note"], elem_id="notice")
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
        with gr.Tab("This PC"):
            gr.Dataframe(value=[list(r) for r in info.machine_rows], headers=["", "this PC"], interactive=False,
                         elem_id="machine")
            gr.Dataframe(value=[list(r) for r in info.device_rows],
                         headers=["device", "kind", "found", "details / why not"], interactive=False,
                         elem_id="devices")
        with gr.Tab("Why this model"):
            gr.Markdown(info.explanation or "The model was chosen by hand.", elem_id="explanation")

        def respond(message: str, conv: Conversation, limit: float, temp: float, system_prompt: str,
                    request: gr.Request):
            owner = request.session_hash or "anonymous"
            sampling = Sampling(max_new_tokens=int(limit), temperature=float(temp))
            for update in service.respond(owner, conv, message, sampling, system_prompt):
                if update.error:
                    gr.Warning(update.error)
                    yield update.conversation.display(), update.conversation, message
                    return
                yield update.conversation.display(), update.conversation, ""

        def stop_mine(request: gr.Request) -> None:
            service.cancel(request.session_hash or "anonymous")

        inputs = [box, conversation, max_tokens, temperature, system]
        outputs = [chatbot, conversation, box]
        box.submit(respond, inputs, outputs, api_name="chat", concurrency_limit=1)
        send.click(respond, inputs, outputs, api_name=False, concurrency_limit=1)
        stop.click(stop_mine, None, None, api_name="stop", queue=False)
        clear.click(lambda: ([], Conversation(), ""), None, outputs, api_name=False, queue=False)
    return app


def launch_kwargs() -> dict:
    return {"theme": THEME, "css": CSS}
