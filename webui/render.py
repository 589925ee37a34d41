"""HTML pieces of the page, made from plain data: the notice, "This PC" cards, the speed chart, export links.

Everything shown is escaped here; nothing is fetched from the internet (no fonts, scripts or images).
"""

from __future__ import annotations

import html
import re
from urllib.parse import quote

from .chat import Conversation
from .tab import title_of, to_json, to_markdown
from .views import DeviceRow


def _inline(text: str) -> str:
    """Escaped text, with `code` in backticks shown as code (the notices name commands that way)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def notice(notices: tuple[str, ...] | list[str]) -> str:
    """Every notice in full on a wide screen; on a phone one line that opens on tap (a checkbox and its label,
    no script)."""
    if not notices:
        return ""
    first = notices[0].split(". ")[0]
    more = f" (+{len(notices) - 1} more)" if len(notices) > 1 else ""
    body = "".join(f"<p>{_inline(n)}</p>" for n in notices)
    return (f"<div class='notice-box'><input type='checkbox' id='notice-open' class='notice-toggle'>"
            f"<label for='notice-open' class='notice-line'>{_inline(first)}{more}</label>"
            f"<div class='notice-body'>{body}</div></div>")


def machine_card(rows: tuple[tuple[str, str], ...] | list) -> str:
    if not rows:
        return ""
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in rows)
    return f"<div class='pc-card'><h3>This PC</h3><dl>{items}</dl></div>"


def running_device(rows: tuple[DeviceRow, ...], device_id: str) -> int:
    """Which found device runs the model: the one whose id is the running candidate's; -1 when none is."""
    return next((i for i, r in enumerate(rows) if r.found and r.id.upper() == device_id.upper()), -1)


def device_cards(rows: tuple[DeviceRow, ...], device_id: str = "") -> str:
    """One card per device the probe looked for: found or not, and why; the one the model runs on marked."""
    if not rows:
        return ""
    now = running_device(rows, device_id) if device_id else -1
    cards = []
    for i, row in enumerate(rows):
        state = "found" if row.found else "not found"
        mark = "<span class='badge run'>running the model</span>" if i == now else ""
        why = "" if row.found else "<b>why: </b>"
        cards.append(
            f"<div class='dev-card {'on' if row.found else 'off'}{' running' if i == now else ''}'>"
            f"<div class='dev-head'><span class='dev-kind'>{html.escape(row.kind.upper())}</span>"
            f"<b class='dev-name'>{html.escape(row.name)}</b>{mark}</div>"
            f"<div class='dev-meta'><span class='badge {'yes' if row.found else 'no'}'>{state}</span>"
            f"{f' <code>{html.escape(row.id)}</code>' if row.id else ''}</div>"
            f"<div class='dev-why'>{why}{html.escape(row.details) or '—'}</div></div>")
    return f"<div class='dev-cards'>{''.join(cards)}</div>"


def _spark(values: list[float], label: str, unit: str, width: int = 220, height: int = 54) -> str:
    top = max(values) or 1.0
    step = (width - 16) / max(len(values) - 1, 1)
    points = [(8 + i * step, height - 8 - (v / top) * (height - 22)) for i, v in enumerate(values)]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    dots = "".join(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='2.5'/>" for x, y in points)
    last = values[-1]
    return (f"<figure class='spark'><figcaption>{html.escape(label)}: <b>{last:.2f} {unit}</b> now, "
            f"{min(values):.2f}–{top:.2f} so far</figcaption>"
            f"<svg viewBox='0 0 {width} {height}' width='{width}' height='{height}' role='img' "
            f"aria-label='{html.escape(label)} over this session'>"
            f"<polyline fill='none' stroke='currentColor' stroke-width='1.5' points='{line}'/>{dots}</svg></figure>")


def speed_chart(speeds: list[tuple[float, float]]) -> str:
    """Tokens/s and time to first token of each answer in this session, as two small inline SVG charts."""
    if not speeds:
        return "<p class='spark-empty'>The speed of each answer shows here once the model has answered.</p>"
    ttft = [s[0] for s in speeds]
    rate = [s[1] for s in speeds]
    n = len(speeds)
    return (f"<div class='sparks' data-answers='{n}'>{_spark(rate, 'tokens/s', 'tokens/s')}"
            f"{_spark(ttft, 'time to first token', 's')}<p>{n} answer{'s' if n != 1 else ''} this session</p></div>")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "chat"


def export_links(conversation: Conversation) -> str:
    """Download links for this chat as Markdown and JSON, made in the page (data: URLs: nothing is uploaded
    or stored on the server)."""
    if not conversation.turns:
        return "<p class='export-empty'>Nothing to export yet.</p>"
    name = _slug(title_of(conversation.turns))
    md = quote(to_markdown(conversation))
    js = quote(to_json(conversation))
    return (f"<div class='export'><a id='export-md' download='{name}.md' "
            f"href='data:text/markdown;charset=utf-8,{md}'>Download as Markdown</a> · "
            f"<a id='export-json' download='{name}.json' "
            f"href='data:application/json;charset=utf-8,{js}'>Download as JSON</a></div>")
