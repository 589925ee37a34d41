"""The Chat tab: the chat, the box, Send and Stop, this tab's settings, past chats, the session's speed, export.

Every event goes through the queue (queue=False events would be sent to /gradio_api/run/, which webui/security.py
closes). Answers of a tab (Enter, Send, an example, Regenerate, an edit) all write to one chat: a newer one, New chat
or another past chat takes over (`TabState.epoch`); the older one stops in the engine and ends without touching the
page (its last update is a skip, so Gradio's final re-send of it changes nothing).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import gradio as gr

from app.serving import ServingQueue
from models.engines import Sampling
from models.engines.sampling import MAX_SEED, JsonSchema
from models.errors import AppError

from .. import render
from ..auth import Access
from ..chat import DEFAULT_SYSTEM_PROMPT, Conversation, respond, waiting_line
from ..tab import TabState, cut_at_user, event_index

EXAMPLES = ("What is the capital of France?", "Explain in two sentences what an NPU is.",
            "Write a Python function that reverses a string.", "Write a haiku about the sea.")
SAVE_EVERY_S = 1.0  # while an answer streams, its copy in the browser is refreshed this often
TAKE_OVER_WAIT_S = 2.0  # New chat, Undo, a past chat: how long the old answer gets to end its stream first


@dataclass
class ChatTab:
    chatbot: gr.Chatbot
    box: gr.Textbox
    send: gr.Button
    stop: gr.Button
    clear: gr.Button
    settings: list  # max tokens, temperature, system prompt, top-p, seed, JSON on, schema (the order handlers take)
    reset: gr.Button
    past: gr.Radio
    chart: gr.HTML
    export: gr.HTML


def seed_shown(sampling: Sampling) -> int:
    return -1 if sampling.seed is None else sampling.seed


def sampling_of(limit, temp, top_p, seed, json_on=False, schema="") -> Sampling:
    seed = None if seed is None or seed == "" or int(seed) < 0 else int(seed)
    shape = None
    if json_on:  # held by the engine's structured output: the answer always parses
        shape = JsonSchema(schema.strip(), "page") if (schema or "").strip() else JsonSchema.any_object()
    return Sampling(max_new_tokens=int(limit), temperature=float(temp), top_p=float(top_p), seed=seed,
                    response_format=shape)


def _settings(defaults: Sampling) -> tuple[list, gr.Button]:
    with gr.Accordion("Settings (this tab)", open=False, elem_id="settings"):
        system = gr.Textbox(value=DEFAULT_SYSTEM_PROMPT, label="System prompt", lines=2, elem_id="system")
        with gr.Row():
            max_tokens = gr.Slider(16, 2048, value=defaults.max_new_tokens, step=16,
                                   label="Longest answer (tokens)", elem_id="max-tokens")
            temperature = gr.Slider(0.0, 1.5, value=defaults.temperature, step=0.05,
                                    label="Temperature (0 = always the most likely word)", elem_id="temperature")
        with gr.Row():
            top_p = gr.Slider(0.05, 1.0, value=defaults.top_p, step=0.05, label="Top-p (with temperature > 0)",
                              elem_id="top-p")
            seed = gr.Number(value=seed_shown(defaults), label="Seed (-1: a new one for every answer)", precision=0,
                             minimum=-1, maximum=MAX_SEED, elem_id="seed")
        with gr.Row():
            json_on = gr.Checkbox(False, label="JSON answer", elem_id="json-on",
                                  info="the engine holds the answer to JSON while it is written: one that ends "
                                       "always parses")
            schema = gr.Code("", language="json", label="JSON schema (empty: any JSON object)",
                             elem_id="json-schema", lines=3)
        reset = gr.Button("Reset to the model's defaults", size="sm", elem_id="reset")
    return [max_tokens, temperature, system, top_p, seed, json_on, schema], reset


def build(defaults: Sampling, access: Access, join_url: str = "") -> ChatTab:
    """The tab's layout (inside a `gr.Tab`)."""
    chatbot = gr.Chatbot(label="Chat", height=480, elem_id="chatbot", feedback_options=None,
                         buttons=["copy", "copy_all"], editable="user", autoscroll=True,
                         examples=[{"text": e} for e in EXAMPLES], placeholder="Ask anything, or pick an example.")
    with gr.Row(elem_id="ask-row"):
        box = gr.Textbox(placeholder="Ask something, then Enter", show_label=False, scale=8, elem_id="prompt",
                         autofocus=True, min_width=120, max_lines=6)
        send = gr.Button("Send", variant="primary", scale=1, elem_id="send", min_width=64)
        stop = gr.Button("Stop", variant="stop", scale=1, elem_id="stop", min_width=64, interactive=False)
    clear = gr.Button("New chat", size="sm", elem_id="new-chat")
    settings, reset = _settings(defaults)
    with gr.Accordion("Past chats", open=False, elem_id="past-chats"):
        past = gr.Radio([], label="Open a past chat (kept in this browser)", elem_id="past")
    with gr.Accordion("Speed this session", open=False, elem_id="speed-box"):
        chart = gr.HTML(render.speed_chart([]), elem_id="speed", padding=False)
    with gr.Accordion("Export this chat", open=False, elem_id="export-box"):
        export = gr.HTML(render.export_links(Conversation()), elem_id="export", padding=False)
    if join_url:
        from ..server import qr_svg

        with gr.Accordion("Join from a phone", open=False):
            gr.HTML(f"<div id='join'>{qr_svg(join_url)}<p>{join_url}</p></div>")
    if access.lan:  # a same-site POST ends this browser's login only (webui/security.py)
        gr.Button("Log out", size="sm", elem_id="logout").click(
            None, js="() => fetch('/logout', {method: 'POST'}).then(() => location.reload())")
    return ChatTab(chatbot, box, send, stop, clear, settings, reset, past, chart, export)


class _Answers:
    """The tab's answers: what every chat event shows, and one answer streamed into this tab's chat."""

    def __init__(self, queue: ServingQueue, ui: ChatTab, saved: gr.BrowserState):
        self.queue = queue
        self.outputs = [ui.chatbot, ui.box, ui.send, ui.stop, saved, ui.chart, ui.export, ui.past]
        self.unchanged = tuple(gr.skip() for _ in self.outputs)

    def view(self, t: TabState, shown: list | None = None, box_value=gr.skip(), busy: bool = False,
             store: bool = True):
        return (t.conversation.display() if shown is None else shown, box_value,
                gr.update(interactive=not busy), gr.update(interactive=busy),
                t.to_browser() if store else gr.skip(),
                gr.skip() if busy else render.speed_chart(t.speeds),
                gr.skip() if busy else render.export_links(t.conversation),
                gr.skip() if busy else gr.update(choices=t.past_choices(), value=None))

    def answer(self, t: TabState, before: Conversation, message: str, settings: tuple, from_box: bool):
        """Stream one answer to `message` after `before` into this tab's chat."""
        if t.switching:
            gr.Warning("Sending is paused while the model is switched: it resumes when the new one runs.")
            yield self.view(t, box_value=message if from_box else gr.skip(), store=False)
            return
        try:
            sampling = sampling_of(*settings[:2], *settings[3:7])
        except (AppError, TypeError, ValueError, OverflowError) as err:
            gr.Warning(f"Settings: {err}")
            yield self.view(t, store=False)
            return
        epoch = t.begin()
        owner = t.owned()
        self.queue.cancel(owner)  # an answer of this tab still running (Regenerate, an edit) stops now
        t.conversation, t.answering = before, epoch
        t.streams += 1
        try:
            yield from self._stream(t, epoch, owner, before, message, sampling, settings[2], from_box)
        finally:
            t.streams -= 1
            if t.current(epoch):
                t.answering = 0

    def _stream(self, t: TabState, epoch: int, owner: str, before: Conversation, message: str,
                sampling: Sampling, system_prompt: str, from_box: bool):
        saved_at = 0.0
        cleared = "" if from_box else gr.skip()
        question = {"role": "user", "content": message.strip()}
        for update in respond(self.queue, owner, before, message, sampling, system_prompt):
            if not t.current(epoch):  # taken over: stop here (closing the stream stops the engine)
                yield self.unchanged
                return
            if update.position:  # waiting behind other people's answers (the page and the API share a queue)
                shown = before.display() + [question, {"role": "assistant", "content": waiting_line(update)}]
                yield self.view(t, shown, cleared, busy=True, store=False)
                continue
            if update.done:
                if update.error:
                    gr.Warning(update.error)
                t.finish(update.conversation)
                back = update.give_back if update.give_back and from_box else cleared
                yield self.view(t, box_value=back)
                return
            t.conversation = update.conversation
            now = time.monotonic()
            store = now - saved_at >= SAVE_EVERY_S  # the browser's copy follows, so a reload loses nothing
            saved_at = now if store else saved_at
            yield self.view(t, box_value=cleared, busy=True, store=store)

    def take_over(self, t: TabState) -> None:
        """Whatever this tab was answering stops: its chat is about to change."""
        if t.answering:
            t.interrupt()
            t.answering = 0
        t.begin()
        if t.owner:
            self.queue.cancel(t.owner)
        # Let the old answer's generator see it was taken over and end (its next update is skipped), so no
        # update of it already on its way lands after this event's and paints the old answer back. Bounded.
        deadline = time.monotonic() + TAKE_OVER_WAIT_S
        while t.streams and time.monotonic() < deadline:
            time.sleep(0.02)


def wire(page: gr.Blocks, queue: ServingQueue, ui: ChatTab, tab: gr.State, saved: gr.BrowserState,
         defaults: Sampling) -> None:
    """Connect the tab's components (see the module docstring for what an answer does)."""
    a = _Answers(queue, ui, saved)
    limit = queue.max_queue + max(8, queue.slots + 1)
    answers = {"concurrency_id": "answers", "concurrency_limit": limit, "show_progress": "minimal"}

    def chat(message: str, limit_: float, temp: float, system_prompt: str, top_p_: float = 1.0, seed_: float = -1,
             json_on_: bool = False, schema_: str = "", t: TabState | None = None):
        t = TabState() if t is None else t
        yield from a.answer(t, t.conversation, message, (limit_, temp, system_prompt, top_p_, seed_, json_on_,
                                                         schema_), True)

    # Enter and Send are one event: while its answer runs, a second Enter is not sent (trigger_mode "once").
    gr.on([ui.box.submit, ui.send.click], chat, [ui.box, *ui.settings, tab], a.outputs, api_name="chat",
          trigger_mode="once", **answers)

    def regenerate(t: TabState, limit_, temp, system_prompt, top_p_, seed_, json_on_, schema_, retry: gr.RetryData):
        before, message = cut_at_user(t.conversation, event_index(retry.index))
        if not message:
            yield a.view(t, store=False)
            return
        yield from a.answer(t, before, message, (limit_, temp, system_prompt, top_p_, seed_, json_on_, schema_), False)

    def edited(t: TabState, limit_, temp, system_prompt, top_p_, seed_, json_on_, schema_, edit: gr.EditData):
        before, _old = cut_at_user(t.conversation, event_index(edit.index))
        text = edit.value if isinstance(edit.value, str) else str(edit.value or "")
        yield from a.answer(t, before, text, (limit_, temp, system_prompt, top_p_, seed_, json_on_, schema_), False)

    def example(t: TabState, limit_, temp, system_prompt, top_p_, seed_, json_on_, schema_, chosen: gr.SelectData):
        value = chosen.value if isinstance(chosen.value, dict) else {}
        yield from a.answer(t, t.conversation, str(value.get("text", "")),
                            (limit_, temp, system_prompt, top_p_, seed_, json_on_, schema_), False)

    inputs = [tab, *ui.settings]
    ui.chatbot.retry(regenerate, inputs, a.outputs, api_name=False, **answers)
    ui.chatbot.edit(edited, inputs, a.outputs, api_name=False, **answers)
    ui.chatbot.example_select(example, inputs, a.outputs, api_name=False, **answers)
    _wire_quick(page, queue, ui, tab, saved, defaults, a)


def _wire_quick(page: gr.Blocks, queue: ServingQueue, ui: ChatTab, tab: gr.State, saved: gr.BrowserState,
                defaults: Sampling, a: _Answers) -> None:
    """Stop, Undo, New chat, a past chat, a reload, Reset: each has its own concurrency, never waiting behind an
    answer."""

    def stop_mine(t: TabState) -> None:
        if t.owner:  # the owner secret lives in this tab's server-side state: nobody else's Stop reaches it
            queue.cancel(t.owner)

    def undo(t: TabState, step: gr.UndoData):
        a.take_over(t)
        t.conversation, message = cut_at_user(t.conversation, event_index(step.index))
        return a.view(t, box_value=message)

    def new_chat(t: TabState):
        a.take_over(t)
        t.new_chat()
        return a.view(t)

    def open_past(chat_id: str, t: TabState):
        if not chat_id:
            return a.unchanged
        a.take_over(t)
        t.open(chat_id)
        return a.view(t)

    def restore(stored, t: TabState):
        """A reload (or a new tab) gets the chats this browser kept; its owner secret is its own."""
        t.restore(stored)
        return a.view(t, store=False)

    quick = {"api_name": False, "concurrency_limit": None}
    ui.stop.click(stop_mine, [tab], None, api_name="stop", concurrency_limit=None)
    ui.chatbot.undo(undo, [tab], a.outputs, **quick)
    ui.clear.click(new_chat, [tab], a.outputs, **quick)
    ui.chatbot.clear(new_chat, [tab], a.outputs, **quick)
    ui.past.input(open_past, [ui.past, tab], a.outputs, **quick)
    page.load(restore, [saved, tab], a.outputs, **quick)
    max_tokens, temperature, system, top_p, seed = ui.settings[:5]
    ui.reset.click(lambda: (defaults.max_new_tokens, defaults.temperature, defaults.top_p, seed_shown(defaults),
                            DEFAULT_SYSTEM_PROMPT), None, [max_tokens, temperature, top_p, seed, system], **quick)
