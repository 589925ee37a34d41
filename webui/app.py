"""The Gradio page: layout and wiring. The logic is in webui/chat.py (the shared queue, answers, figures) and
webui/tab.py (a tab's chats, their copy in the browser, edits, export); HTML pieces in webui/render.py.

Every event goes through the queue (queue=False events would be sent to /gradio_api/run/, which
webui/security.py closes). Answers of a tab (Enter, Send, an example, Regenerate, an edit) all write to one
chat: a newer one, New chat or another past chat takes over (`TabState.epoch`); the older one stops in the
engine and ends without touching the page (its last update is a skip, so Gradio's final re-send of it
changes nothing).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from models.engines import Sampling
from models.engines.sampling import MAX_SEED, JsonSchema
from models.errors import AppError

from . import render
from .auth import Access
from .bench_tab import ABOUT as BENCH_ABOUT
from .bench_tab import HOST_ONLY as BENCH_HOST_ONLY
from .bench_tab import BenchTab, View
from .chat import DEFAULT_SYSTEM_PROMPT, ChatService, Conversation, model_defaults, waiting_line
from .tab import TabState, cut_at_user, event_index

HOST_ONLY = "Only the host can switch models"
EXAMPLES = ("What is the capital of France?", "Explain in two sentences what an NPU is.",
            "Write a Python function that reverses a string.", "Write a haiku about the sea.")
# The chats are kept in this browser's localStorage under this key. Gradio encrypts them with this secret,
# which the page's own config carries: it keeps the value opaque, not private. A fixed secret lets the chats
# outlive a restart of the app.
STORAGE_KEY = "phi3pc-chats"
STORAGE_SECRET = "phi3pc-chats-in-this-browser"
SAVE_EVERY_S = 1.0  # while an answer streams, its copy in the browser is refreshed this often
TAKE_OVER_WAIT_S = 2.0  # New chat, Undo, a past chat: how long the old answer gets to end its stream first

CSS = (Path(__file__).parent / "page.css").read_text(encoding="utf-8")
# System fonts only: the page must look right with no internet (Gradio's default theme pulls Google Fonts).
THEME = gr.themes.Soft(font=[gr.themes.Font("system-ui"), "sans-serif"],
                       font_mono=[gr.themes.Font("ui-monospace"), "monospace"])


@dataclass(frozen=True)
class PageInfo:
    title: str
    running: str  # "SmolLM2-135M on CPU (AMD EPYC) with OpenVINO GenAI"
    notices: tuple[str, ...] = ()
    machine_rows: tuple[tuple[str, str], ...] = ()  # "This PC" summary
    device_rows: tuple[tuple[str, ...], ...] = ()  # (name [id], kind, "yes"/"no", details / why not)
    explanation: str = ""  # HTML: why this model, what else was considered
    join_url: str = ""  # LAN mode: the address a phone opens (shown with a QR code)
    running_device: str = ""  # the device id the model runs on ("CPU", "GPU.0"); else told from `running`


@dataclass(frozen=True)
class Chooser:
    """Lets the page re-rank with other preferences, and switch to the new first choice."""

    explain: Callable[[str, str, str], str]  # (mode, device, model id or "auto") -> HTML
    # (mode, device, model, progress callback) -> (running text, notices); fetches what is missing
    switch: Callable[..., tuple[str, tuple[str, ...]]]
    models: tuple[tuple[str, str], ...] = ()  # (label, id) for the model picker


def _running(text: str) -> str:
    return f"Running **{text}**."


def _seed(sampling: Sampling) -> int:
    return -1 if sampling.seed is None else sampling.seed


def _sampling(limit, temp, top_p, seed, json_on=False, schema="") -> Sampling:
    seed = None if seed is None or seed == "" or int(seed) < 0 else int(seed)
    shape = None
    if json_on:  # held by the engine's structured output: the answer always parses
        shape = JsonSchema(schema.strip(), "page") if (schema or "").strip() else JsonSchema.any_object()
    return Sampling(max_new_tokens=int(limit), temperature=float(temp), top_p=float(top_p), seed=seed,
                    response_format=shape)


def build_app(service: ChatService, info: PageInfo, chooser: Chooser | None = None,
              access: Access | None = None, bench: BenchTab | None = None) -> gr.Blocks:
    """In LAN mode (`access.lan`) the page's config holds no machine description and no switch controls are
    shown: a load event fills and shows them for a host (`access.is_admin`), and the handlers refuse guests.
    With `bench` (webui/bench_tab.py) the page has a Benchmark tab, host-only the same way."""
    access = access or Access()
    guarded = access.lan  # host-only parts start empty and hidden
    defaults = model_defaults(service.engine)
    with gr.Blocks(title=info.title) as app:
        gr.Markdown(f"# {info.title}", elem_id="title")
        running = gr.Markdown(_running(info.running), elem_id="running")
        notices = gr.HTML(render.notice(info.notices), elem_id="notice", padding=False)
        tab = gr.State(TabState())  # server-side, a copy per tab: its chat and the secret its Stop needs
        saved = gr.BrowserState({"v": 1, "chats": []}, storage_key=STORAGE_KEY, secret=STORAGE_SECRET)
        with gr.Tab("Chat"):
            chatbot = gr.Chatbot(label="Chat", height=480, elem_id="chatbot", feedback_options=None,
                                 buttons=["copy", "copy_all"], editable="user", autoscroll=True,
                                 examples=[{"text": e} for e in EXAMPLES],
                                 placeholder="Ask anything, or pick an example.")
            with gr.Row(elem_id="ask-row"):
                box = gr.Textbox(placeholder="Ask something, then Enter", show_label=False, scale=8,
                                 elem_id="prompt", autofocus=True, min_width=120, max_lines=6)
                send = gr.Button("Send", variant="primary", scale=1, elem_id="send", min_width=64)
                stop = gr.Button("Stop", variant="stop", scale=1, elem_id="stop", min_width=64, interactive=False)
            clear = gr.Button("New chat", size="sm", elem_id="new-chat")
            with gr.Accordion("Settings (this tab)", open=False, elem_id="settings"):
                system = gr.Textbox(value=DEFAULT_SYSTEM_PROMPT, label="System prompt", lines=2, elem_id="system")
                with gr.Row():
                    max_tokens = gr.Slider(16, 2048, value=defaults.max_new_tokens, step=16,
                                           label="Longest answer (tokens)", elem_id="max-tokens")
                    temperature = gr.Slider(0.0, 1.5, value=defaults.temperature, step=0.05,
                                            label="Temperature (0 = always the most likely word)",
                                            elem_id="temperature")
                with gr.Row():
                    top_p = gr.Slider(0.05, 1.0, value=defaults.top_p, step=0.05,
                                      label="Top-p (with temperature > 0)", elem_id="top-p")
                    seed = gr.Number(value=_seed(defaults), label="Seed (-1: a new one for every answer)",
                                     precision=0, minimum=-1, maximum=MAX_SEED, elem_id="seed")
                with gr.Row():
                    json_on = gr.Checkbox(False, label="JSON answer", elem_id="json-on",
                                          info="the engine holds the answer to JSON while it is written: one "
                                               "that ends always parses")
                    schema = gr.Code("", language="json", label="JSON schema (empty: any JSON object)",
                                     elem_id="json-schema", lines=3)
                reset = gr.Button("Reset to the model's defaults", size="sm", elem_id="reset")
            with gr.Accordion("Past chats", open=False, elem_id="past-chats"):
                past = gr.Radio([], label="Open a past chat (kept in this browser)", elem_id="past")
            with gr.Accordion("Speed this session", open=False, elem_id="speed-box"):
                chart = gr.HTML(render.speed_chart([]), elem_id="speed", padding=False)
            with gr.Accordion("Export this chat", open=False, elem_id="export-box"):
                export = gr.HTML(render.export_links(Conversation()), elem_id="export", padding=False)
            if info.join_url:
                from .server import qr_svg

                with gr.Accordion("Join from a phone", open=False):
                    gr.HTML(f"<div id='join'>{qr_svg(info.join_url)}<p>{info.join_url}</p></div>")
            if access.lan:  # a same-site POST ends this browser's login only (webui/security.py)
                gr.Button("Log out", size="sm", elem_id="logout").click(
                    None, js="() => fetch('/logout', {method: 'POST'}).then(() => location.reload())")
        machine_html = render.machine_card(info.machine_rows)
        devices_html = render.device_cards(info.device_rows, info.running, info.running_device)
        with gr.Tab("This PC", visible=not guarded) as pc_tab:
            machine = gr.HTML("" if guarded else machine_html, elem_id="machine", padding=False)
            devices = gr.HTML("" if guarded else devices_html, elem_id="devices", padding=False)
        with gr.Tab("Why this model", visible=not guarded) as why_tab:
            if chooser is not None:
                with gr.Row(visible=not guarded) as switch_row:
                    mode = gr.Radio(["auto", "fastest", "efficient", "quality"], value="auto", label="Prefer",
                                    info="auto: efficient on battery, fastest on AC power; quality: the best "
                                         "model that fits", elem_id="prefer")
                    device = gr.Dropdown(["auto", "cpu", "gpu", "npu", "dml"], value="auto", label="Device",
                                         elem_id="device")
                    model = gr.Dropdown(list(chooser.models), value="auto", label="Model", elem_id="model",
                                        info="a model that is not here yet is downloaded first (size shown)")
                    switch = gr.Button("Switch to the first choice", elem_id="switch")
            chosen = info.explanation or "The model was chosen by hand."
            explanation = gr.HTML("" if guarded else chosen, elem_id="explanation", padding=False)
        if bench is not None:
            with gr.Tab("Benchmark", visible=not guarded) as bench_tab:  # filled when opened, for a host
                gr.Markdown(BENCH_ABOUT, elem_id="bench-about")
                with gr.Row(elem_id="bench-row"):
                    bench_quick = gr.Checkbox(False, label="Quick (1 run of 16 tokens)", elem_id="bench-quick")
                    bench_run = gr.Button("Run benchmark", variant="primary", elem_id="bench-run")
                    bench_stop = gr.Button("Stop", variant="stop", elem_id="bench-stop", interactive=False)
                bench_status = gr.HTML("", elem_id="bench-status", padding=False)
                bench_log = gr.Textbox(label="Progress", lines=8, max_lines=20, interactive=False, visible=False,
                                       elem_id="bench-log")
                bench_chart = gr.HTML("", elem_id="bench-chart-box", padding=False)
                bench_figures = gr.HTML("", elem_id="bench-figures", padding=False)
            _wire_bench(bench, access, bench_tab,
                        (bench_quick, bench_run, bench_stop, bench_status, bench_log, bench_chart, bench_figures))

        # -- what every chat event shows ---------------------------------------------------------
        outputs = [chatbot, box, send, stop, saved, chart, export, past]

        def view(t: TabState, shown: list | None = None, box_value=gr.skip(), busy: bool = False,
                 store: bool = True):
            return (t.conversation.display() if shown is None else shown, box_value,
                    gr.update(interactive=not busy), gr.update(interactive=busy),
                    t.to_browser() if store else gr.skip(),
                    gr.skip() if busy else render.speed_chart(t.speeds),
                    gr.skip() if busy else render.export_links(t.conversation),
                    gr.skip() if busy else gr.update(choices=t.past_choices(), value=None))

        unchanged = tuple(gr.skip() for _ in outputs)

        def answer(t: TabState, before: Conversation, message: str, settings: tuple, from_box: bool):
            """Stream one answer to `message` after `before` into this tab's chat."""
            if t.switching:
                gr.Warning("Sending is paused while the model is switched: it resumes when the new one runs.")
                yield view(t, box_value=message if from_box else gr.skip(), store=False)
                return
            try:
                sampling = _sampling(*settings[:2], *settings[3:7])
            except (AppError, TypeError, ValueError, OverflowError) as err:
                gr.Warning(f"Settings: {err}")
                yield view(t, store=False)
                return
            epoch = t.begin()
            owner = t.owned()
            service.cancel(owner)  # an answer of this tab still running (Regenerate, an edit) stops now
            t.conversation, t.answering = before, epoch
            t.streams += 1
            try:
                yield from _stream(t, epoch, owner, before, message, sampling, settings[2], from_box)
            finally:
                t.streams -= 1
                if t.current(epoch):
                    t.answering = 0

        def _stream(t: TabState, epoch: int, owner: str, before: Conversation, message: str, sampling: Sampling,
                    system_prompt: str, from_box: bool):
            saved_at = 0.0
            cleared = "" if from_box else gr.skip()
            question = {"role": "user", "content": message.strip()}
            for update in service.respond(owner, before, message, sampling, system_prompt):
                if not t.current(epoch):  # taken over: stop here (closing the stream stops the engine)
                    yield unchanged
                    return
                if update.position:  # waiting behind other people's answers (the page and the API share a queue)
                    shown = before.display() + [question, {"role": "assistant", "content": waiting_line(update)}]
                    yield view(t, shown, cleared, busy=True, store=False)
                    continue
                if update.done:
                    if update.error:
                        gr.Warning(update.error)
                    t.finish(update.conversation)
                    back = update.give_back if update.give_back and from_box else cleared
                    yield view(t, box_value=back)
                    return
                t.conversation = update.conversation
                now = time.monotonic()
                store = now - saved_at >= SAVE_EVERY_S  # the browser's copy follows, so a reload loses nothing
                saved_at = now if store else saved_at
                yield view(t, box_value=cleared, busy=True, store=store)

        settings_inputs = [max_tokens, temperature, system, top_p, seed, json_on, schema]
        limit = service.max_queue + max(8, service.slots + 1)
        answers = {"concurrency_id": "answers", "concurrency_limit": limit, "show_progress": "minimal"}

        def respond(message: str, limit_: float, temp: float, system_prompt: str, top_p_: float = 1.0,
                    seed_: float = -1, json_on_: bool = False, schema_: str = "", t: TabState | None = None):
            if t is None:
                t = TabState()
            yield from answer(t, t.conversation, message,
                              (limit_, temp, system_prompt, top_p_, seed_, json_on_, schema_), True)

        # Enter and Send are one event: while its answer runs, a second Enter is not sent (trigger_mode "once").
        gr.on([box.submit, send.click], respond, [box, *settings_inputs, tab], outputs,
              api_name="chat", trigger_mode="once", **answers)

        def regenerate(t: TabState, limit_, temp, system_prompt, top_p_, seed_, json_on_, schema_,
                       retry: gr.RetryData):
            before, message = cut_at_user(t.conversation, event_index(retry.index))
            if not message:
                yield view(t, store=False)
                return
            yield from answer(t, before, message, (limit_, temp, system_prompt, top_p_, seed_, json_on_, schema_),
                              False)

        def edited(t: TabState, limit_, temp, system_prompt, top_p_, seed_, json_on_, schema_, edit: gr.EditData):
            before, _old = cut_at_user(t.conversation, event_index(edit.index))
            text = edit.value if isinstance(edit.value, str) else str(edit.value or "")
            yield from answer(t, before, text, (limit_, temp, system_prompt, top_p_, seed_, json_on_, schema_), False)

        def example(t: TabState, limit_, temp, system_prompt, top_p_, seed_, json_on_, schema_,
                    chosen_: gr.SelectData):
            value = chosen_.value if isinstance(chosen_.value, dict) else {}
            text = str(value.get("text", ""))
            yield from answer(t, t.conversation, text,
                              (limit_, temp, system_prompt, top_p_, seed_, json_on_, schema_), False)

        chat_inputs = [tab, *settings_inputs]
        chatbot.retry(regenerate, chat_inputs, outputs, api_name=False, **answers)
        chatbot.edit(edited, chat_inputs, outputs, api_name=False, **answers)
        chatbot.example_select(example, chat_inputs, outputs, api_name=False, **answers)

        def stop_mine(t: TabState) -> None:
            if t.owner:  # the owner secret lives in this tab's server-side state: nobody else's Stop reaches it
                service.cancel(t.owner)

        def take_over(t: TabState) -> None:
            """Whatever this tab was answering stops: its chat is about to change."""
            if t.answering:
                t.interrupt()
                t.answering = 0
            t.begin()
            if t.owner:
                service.cancel(t.owner)
            # Let the old answer's generator see it was taken over and end (its next update is skipped), so no
            # update of it already on its way lands after this event's and paints the old answer back. Bounded.
            deadline = time.monotonic() + TAKE_OVER_WAIT_S
            while t.streams and time.monotonic() < deadline:
                time.sleep(0.02)

        def undo(t: TabState, step: gr.UndoData):
            take_over(t)
            t.conversation, message = cut_at_user(t.conversation, event_index(step.index))
            return view(t, box_value=message)

        def new_chat(t: TabState):
            take_over(t)
            t.new_chat()
            return view(t)

        def open_past(chat_id: str, t: TabState):
            if not chat_id:
                return unchanged
            take_over(t)
            t.open(chat_id)
            return view(t)

        def restore(stored, t: TabState):
            """A reload (or a new tab) gets the chats this browser kept; its owner secret is its own."""
            t.restore(stored)
            return view(t, store=False)

        quick = {"api_name": False, "concurrency_limit": None}
        # Each event has its own concurrency, so Stop never waits behind an answer.
        stop.click(stop_mine, [tab], None, api_name="stop", concurrency_limit=None)
        chatbot.undo(undo, [tab], outputs, **quick)
        clear.click(new_chat, [tab], outputs, **quick)
        chatbot.clear(new_chat, [tab], outputs, **quick)
        past.input(open_past, [past, tab], outputs, **quick)
        app.load(restore, [saved, tab], outputs, **quick)
        reset.click(lambda: (defaults.max_new_tokens, defaults.temperature, defaults.top_p, _seed(defaults),
                             DEFAULT_SYSTEM_PROMPT), None, [max_tokens, temperature, top_p, seed, system], **quick)

        if guarded:
            host_tabs = [pc_tab, why_tab] + ([bench_tab] if bench is not None else [])

            def for_user(request: gr.Request):
                host = access.is_admin(request.username)
                shown = gr.update(visible=host)
                updates = [shown] * len(host_tabs) + [gr.update(value=machine_html if host else ""),
                                                      gr.update(value=devices_html if host else ""),
                                                      gr.update(value=chosen if host else "")]
                return updates + ([shown] if chooser is not None else [])

            app.load(for_user, None, [*host_tabs, machine, devices, explanation]
                     + ([switch_row] if chooser is not None else []), api_name=False)
        if chooser is not None:
            _wire_switch(app, service, info, chooser, access, tab, (mode, device, model, switch),
                         (running, notices, explanation, send, devices))
    return app


def _wire_bench(bench: BenchTab, access: Access, bench_tab, controls) -> None:
    """The Benchmark tab: opening it shows the newest report (or follows the run going on), Run starts one
    (or follows the one already running), Stop ends it. Every handler refuses guests first; none is in the API."""
    quick, run, stop, status, log, chart, figures = controls

    def shown(v: View):
        return (v.status, gr.update(value=v.log, visible=bool(v.log)),
                gr.skip() if v.chart is None else v.chart, gr.skip() if v.figures is None else v.figures,
                gr.update(interactive=not v.running), gr.update(interactive=v.running))

    def for_host(request: gr.Request) -> None:
        if not access.is_admin(request.username):
            raise gr.Error(BENCH_HOST_ONLY, print_exception=False)

    def open_tab(request: gr.Request):
        for_host(request)
        for v in bench.open():
            yield shown(v)

    def run_bench(quick_: bool, request: gr.Request):
        for_host(request)
        for v in bench.run(bool(quick_)):
            yield shown(v)

    def stop_bench(request: gr.Request) -> None:
        for_host(request)
        gr.Info(bench.stop())

    outputs = [status, log, chart, figures, run, stop]
    # Its own concurrency: a second Run while one runs is answered at once (it says so), Stop never waits.
    free = {"api_name": False, "concurrency_limit": None}
    bench_tab.select(open_tab, None, outputs, **free)
    run.click(run_bench, [quick], outputs, trigger_mode="once", **free)
    stop.click(stop_bench, None, None, **free)


def _target(chooser: Chooser, mode: str, device: str, model: str) -> str:
    label = dict((i, lab) for lab, i in chooser.models).get(model, model)
    what = f"the first choice ({mode})" if model in ("", "auto") else label
    return what + ("" if device == "auto" else f" on {device.upper()}")


def _wire_switch(app, service: ChatService, info: PageInfo, chooser: Chooser, access: Access, tab,
                 controls, shown) -> None:
    mode, device, model, switch = controls
    running, notices, explanation, send, devices = shown

    def explain_for_host(m: str, d: str, mid: str, request: gr.Request) -> str:
        if not access.is_admin(request.username):
            raise gr.Error(HOST_ONLY, print_exception=False)
        return chooser.explain(m, d, mid)

    def do_switch(m: str, d: str, mid: str, t: TabState, request: gr.Request):
        """Fetch and load in a worker thread; meanwhile say what it is doing (download progress, then the
        compile, which on an NPU can take minutes) and keep this tab from sending."""
        if not access.is_admin(request.username):  # checked before anything is ranked or fetched
            raise gr.Error(HOST_ONLY, print_exception=False)
        what = _target(chooser, m, d, mid)
        state = {"download": "", "done": False}
        outcome: dict = {}

        def report(p) -> None:
            state["download"] = p.line()
            state["done"] = p.total_bytes > 0 and p.done_bytes >= p.total_bytes

        def work() -> None:
            try:
                outcome["ok"] = chooser.switch(m, d, mid, report)
            except Exception as err:  # noqa: BLE001 - AppError or an engine's own error: tell the user
                outcome["error"] = err

        started = time.monotonic()
        worker = threading.Thread(target=work, name="switch", daemon=True)
        t.switching = True
        worker.start()
        try:
            while worker.is_alive():
                elapsed = int(time.monotonic() - started)
                if state["download"] and not state["done"]:
                    doing = short = f"downloading {state['download']}"
                else:
                    short = "loading it and compiling it for the device"
                    doing = (f"{short} (the first compile on an NPU can take several minutes; later starts use the "
                             "compiled cache)")
                service.begin_switch(f"{what}: {short}")  # what other tabs' waiting questions say
                line = (f"Switching to {what}: {doing}. {elapsed // 60}:{elapsed % 60:02d} so far. Sending is "
                        "paused until it runs; the chat is kept.")
                yield gr.skip(), render.notice([line]), gr.skip(), gr.update(interactive=False)
                worker.join(0.5)
        finally:
            t.switching = False
            service.end_switch()
        if "error" in outcome:
            failed = str(outcome["error"])
            yield gr.skip(), render.notice([f"The switch failed: {failed}"]), gr.skip(), gr.update(interactive=True)
            raise gr.Error(failed, print_exception=False)
        text, new_notices = outcome["ok"]
        gr.Info(f"Now running {text}")
        yield (_running(text), render.notice(new_notices), chooser.explain(m, d, mid), gr.update(interactive=True))

    def cards_for_host(text: str, request: gr.Request) -> str:
        if not access.is_admin(request.username):
            return gr.skip()
        return render.device_cards(info.device_rows, text.removeprefix("Running **").removesuffix("**."))

    choices = [mode, device, model]
    for control in choices:
        control.change(explain_for_host, choices, explanation, api_name=False)
    switch.click(do_switch, [*choices, tab], [running, notices, explanation, send], api_name="switch",
                 concurrency_limit=1).success(cards_for_host, [running], [devices], api_name=False)


def launch_kwargs() -> dict:
    return {"theme": THEME, "css": CSS}
