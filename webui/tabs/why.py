"""The "Why this model" tab: why the running model was chosen and what else was considered; for a host, the
preference controls and the switch to the new first choice (app/running.py does the switch; this tab shows it).

While a switch runs, a worker thread does it and this tab says, every half second, which step it is in (the
download's progress, then the compile); the questions of other tabs wait with that line (`Models.tell`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol

import gradio as gr

from models.policy import DEVICE_CHOICES, MODES, Preference, Ranking
from models.startup import Loaded

from .. import render, views
from ..auth import Access
from ..tab import TabState

HOST_ONLY = "Only the host can switch models"


class Models(Protocol):
    """What the tab needs of the running model (app/running.py's RunningModel is one)."""

    def current(self) -> Loaded: ...
    def explain(self, pref: Preference) -> Ranking: ...
    def switch(self, pref: Preference, progress=None) -> Loaded: ...
    def tell(self, what: str) -> None: ...
    def model_choices(self) -> tuple[tuple[str, str], ...]: ...


@dataclass
class WhyTab:
    tab: gr.Tab
    explanation: gr.HTML
    chosen: str  # the explanation a host sees
    controls: gr.Row | None = None
    mode: gr.Radio | None = None
    device: gr.Dropdown | None = None
    model: gr.Dropdown | None = None
    switch: gr.Button | None = None


def preference(mode: str, device: str, model: str) -> Preference:
    return Preference(mode=mode, device=device, model=None if model in ("", "auto") else model)


def build(explanation: str, models: Models | None, guarded: bool) -> WhyTab:
    with gr.Tab("Why this model", visible=not guarded) as tab:
        parts: dict = {}
        if models is not None:
            with gr.Row(visible=not guarded) as controls:
                parts["mode"] = gr.Radio(list(MODES), value="auto", label="Prefer", elem_id="prefer",
                                         info="auto: efficient on battery, fastest on AC power; quality: the best "
                                              "model that fits")
                parts["device"] = gr.Dropdown(list(DEVICE_CHOICES), value="auto", label="Device", elem_id="device")
                parts["model"] = gr.Dropdown(list(models.model_choices()), value="auto", label="Model",
                                             elem_id="model",
                                             info="a model that is not here yet is downloaded first (size shown)")
                parts["switch"] = gr.Button("Switch to the first choice", elem_id="switch")
            parts["controls"] = controls
        chosen = explanation or "The model was chosen by hand."
        shown = gr.HTML("" if guarded else chosen, elem_id="explanation", padding=False)
    return WhyTab(tab, shown, chosen, **parts)


def _target(models: Models, mode: str, device: str, model: str) -> str:
    label = dict((i, lab) for lab, i in models.model_choices()).get(model, model)
    what = f"the first choice ({mode})" if model in ("", "auto") else label
    return what + ("" if device == "auto" else f" on {device.upper()}")


def _doing(what: str, download: str, downloaded: bool, started: float) -> tuple[str, str]:
    """(the tab's line, what waiting questions read) for one moment of a switch."""
    if download and not downloaded:
        doing = short = f"downloading {download}"
    else:
        short = "loading it and compiling it for the device"
        doing = f"{short} (the first compile on an NPU can take several minutes; later starts use the compiled cache)"
    elapsed = int(time.monotonic() - started)
    return (f"Switching to {what}: {doing}. {elapsed // 60}:{elapsed % 60:02d} so far. Sending is paused until it "
            "runs; the chat is kept."), f"{what}: {short}"


def _explained(models: Models, pref: Preference) -> str:
    return views.explain_markdown(models.explain(pref), running=models.current().candidate)


def wire(models: Models, access: Access, ui: WhyTab, tab: gr.State, running_line: gr.Markdown, notices: gr.HTML,
         send: gr.Button, devices: gr.HTML, device_rows: tuple[views.DeviceRow, ...]) -> None:
    def explain_for_host(m: str, d: str, mid: str, request: gr.Request) -> str:
        if not access.is_admin(request.username):
            raise gr.Error(HOST_ONLY, print_exception=False)
        return _explained(models, preference(m, d, mid))

    def do_switch(m: str, d: str, mid: str, t: TabState, request: gr.Request):
        """Fetch and load in a worker thread; meanwhile say what it is doing and keep this tab from sending."""
        if not access.is_admin(request.username):  # checked before anything is ranked or fetched
            raise gr.Error(HOST_ONLY, print_exception=False)
        what = _target(models, m, d, mid)
        state = {"download": "", "done": False}
        outcome: dict = {}

        def report(p) -> None:
            state["download"] = p.line()
            state["done"] = p.total_bytes > 0 and p.done_bytes >= p.total_bytes

        def work() -> None:
            try:
                outcome["ok"] = models.switch(preference(m, d, mid), report)
            except Exception as err:  # noqa: BLE001 - AppError or an engine's own error: tell the user
                outcome["error"] = err

        started = time.monotonic()
        worker = threading.Thread(target=work, name="switch", daemon=True)
        t.switching = True
        worker.start()
        try:
            while worker.is_alive():
                line, short = _doing(what, state["download"], state["done"], started)
                models.tell(short)  # what other tabs' waiting questions say
                yield gr.skip(), render.notice([line]), gr.skip(), gr.update(interactive=False)
                worker.join(0.5)
        finally:
            t.switching = False
        if "error" in outcome:
            failed = str(outcome["error"])
            yield gr.skip(), render.notice([f"The switch failed: {failed}"]), gr.skip(), gr.update(interactive=True)
            raise gr.Error(failed, print_exception=False)
        loaded: Loaded = outcome["ok"]
        now = loaded.summary()
        gr.Info(f"Now running {now.text()}")
        yield (running_text(now.text()), render.notice(loaded.notices), _explained(models, preference(m, d, mid)),
               gr.update(interactive=True))

    def cards_for_host(request: gr.Request) -> str:
        """The device cards, the one the new model runs on marked (after a switch; not in the API)."""
        if not access.is_admin(request.username):
            return gr.skip()
        return render.device_cards(device_rows, models.current().summary().device_id)

    choices = [ui.mode, ui.device, ui.model]
    for control in choices:
        control.change(explain_for_host, choices, ui.explanation, api_name=False)
    ui.switch.click(do_switch, [*choices, tab], [running_line, notices, ui.explanation, send], api_name="switch",
                    concurrency_limit=1).success(cards_for_host, None, [devices], api_name=False)


def running_text(text: str) -> str:
    return f"Running **{text}**."
