"""The Benchmark tab: opening it shows the newest report (or follows the run going on), Run starts one (or follows
the one already running), Stop ends it. Every handler refuses guests first; none is in the API. The runs themselves
are webui/bench_tab.py's."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ..auth import Access
from ..bench_tab import ABOUT, HOST_ONLY, BenchTab, View


@dataclass
class BenchmarkTab:
    tab: gr.Tab
    quick: gr.Checkbox
    run: gr.Button
    stop: gr.Button
    status: gr.HTML
    log: gr.Textbox
    chart: gr.HTML
    figures: gr.HTML


def build(guarded: bool) -> BenchmarkTab:
    with gr.Tab("Benchmark", visible=not guarded) as tab:  # filled when opened, for a host
        gr.Markdown(ABOUT, elem_id="bench-about")
        with gr.Row(elem_id="bench-row"):
            quick = gr.Checkbox(False, label="Quick (1 run of 16 tokens)", elem_id="bench-quick")
            run = gr.Button("Run benchmark", variant="primary", elem_id="bench-run")
            stop = gr.Button("Stop", variant="stop", elem_id="bench-stop", interactive=False)
        status = gr.HTML("", elem_id="bench-status", padding=False)
        log = gr.Textbox(label="Progress", lines=8, max_lines=20, interactive=False, visible=False, elem_id="bench-log")
        chart = gr.HTML("", elem_id="bench-chart-box", padding=False)
        figures = gr.HTML("", elem_id="bench-figures", padding=False)
    return BenchmarkTab(tab, quick, run, stop, status, log, chart, figures)


def wire(bench: BenchTab, access: Access, ui: BenchmarkTab) -> None:
    def shown(v: View):
        return (v.status, gr.update(value=v.log, visible=bool(v.log)),
                gr.skip() if v.chart is None else v.chart, gr.skip() if v.figures is None else v.figures,
                gr.update(interactive=not v.running), gr.update(interactive=v.running))

    def for_host(request: gr.Request) -> None:
        if not access.is_admin(request.username):
            raise gr.Error(HOST_ONLY, print_exception=False)

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

    outputs = [ui.status, ui.log, ui.chart, ui.figures, ui.run, ui.stop]
    # Its own concurrency: a second Run while one runs is answered at once (it says so), Stop never waits.
    free = {"api_name": False, "concurrency_limit": None}
    ui.tab.select(open_tab, None, outputs, **free)
    ui.run.click(run_bench, [ui.quick], outputs, trigger_mode="once", **free)
    ui.stop.click(stop_bench, None, None, **free)
