"""The "This PC" tab: the machine and one card per device the probe looked for, the running one marked."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from .. import render
from ..views import DeviceRow


@dataclass
class MachineTab:
    tab: gr.Tab
    machine: gr.HTML
    devices: gr.HTML
    machine_html: str  # what a host sees (in LAN mode the page's config carries none of it: filled on load)
    devices_html: str


def build(machine_rows: tuple[tuple[str, str], ...], devices: tuple[DeviceRow, ...], running_device: str,
          guarded: bool) -> MachineTab:
    machine_html = render.machine_card(machine_rows)
    devices_html = render.device_cards(devices, running_device)
    with gr.Tab("This PC", visible=not guarded) as tab:
        machine = gr.HTML("" if guarded else machine_html, elem_id="machine", padding=False)
        cards = gr.HTML("" if guarded else devices_html, elem_id="devices", padding=False)
    return MachineTab(tab, machine, cards, machine_html, devices_html)
