"""Plain-text and table views of the profile and the ranking, shared by the terminal and the page."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from capabilities import MachineProfile
from models.engines import registry
from models.policy import Candidate, Ranking

GB = 1_000_000_000


def _gb(n: int | None) -> str:
    return "?" if not n else f"{n / GB:.1f} GB"


def machine_rows(p: MachineProfile) -> tuple[tuple[str, str], ...]:
    cpu = p.cpu
    cores = f"{cpu.physical_cores or '?'} cores, {cpu.logical_cores or '?'} threads"
    gen = f" ({cpu.intel_generation})" if cpu.intel_generation else ""
    if p.power.on_battery is None:
        power = p.power.reason or "not reported"
    else:
        power = ("on battery" if p.power.on_battery else "on AC power") + (
            f", {p.power.percent:.0f} %" if p.power.percent is not None else "")
    engines = ", ".join(f"{e.name} {e.version}" for e in p.engines if e.version) or "none"
    return (
        ("System", f"{p.system.os} {p.system.os_version} ({p.system.arch}), Python {p.system.python}"),
        ("CPU", f"{cpu.brand}{gen}, {cores}"),
        ("CPU features", ", ".join(cpu.features) or "none of note"),
        ("Memory", f"{_gb(p.memory.available_bytes)} free of {_gb(p.memory.total_bytes)}"),
        ("Power", power),
        ("Engines", engines),
        ("Probe took", f"{p.probe_seconds * 1000:.0f} ms"),
    )


@dataclass(frozen=True)
class DeviceRow:
    """A device the probe looked for, as the page's card shows it."""

    name: str
    id: str  # the engine's device id ("CPU", "GPU.0", "NPU"): what a running model's candidate names
    kind: str  # cpu | gpu | npu
    found: bool
    details: str  # what it is, or why it is not usable


def device_rows(p: MachineProfile) -> tuple[DeviceRow, ...]:
    rows = []
    for d in p.devices:
        details = []
        if d.present:
            if d.discrete is not None:
                details.append("discrete" if d.discrete else "integrated")
            if d.memory_bytes:
                details.append(_gb(d.memory_bytes))
            if d.tops:
                details.append(f"{d.tops:g} TOPS")
            details.append(f"via {d.source}")
        if d.reason:
            details.append(d.reason)
        rows.append(DeviceRow(d.name, d.id, d.kind, d.present, ", ".join(details)))
    return tuple(rows)


def explain_text(r: Ranking) -> str:
    lines = [f"Preference: {r.preference.mode} (resolved: {r.mode}), device {r.preference.device}"
             + (f", model {r.preference.model}" if r.preference.model else ""), "", "Ranked candidates:"]
    if not r.candidates:
        lines.append("  (none)")
    for i, c in enumerate(r.candidates, 1):
        lines.append(f"{i:3}. {c.artifact.id}  [{c.artifact.engine} on {c.device_id}]  score {c.score:.1f}")
        lines.extend(f"       - {why}" for why in c.reasons)
    lines += ["", "Not usable here:"]
    if not r.rejected:
        lines.append("  (none)")
    for rej in r.rejected:
        lines.append(f"   x {rej.artifact_id} ({rej.device_kind}): {'; '.join(rej.reasons)}")
    return "\n".join(lines)



_NEEDS = re.compile(r"^needs (\S+ GB) of (.+), (\S+ GB) available$")


def _memory(reasons: tuple[str, ...]) -> tuple[str, list[str]]:
    """The policy's "needs X of POOL, Y available" reason as its own column; the other reasons."""
    memory, rest = "", []
    for why in reasons:
        m = _NEEDS.match(why)
        if m and not memory:
            memory = f"{m.group(1)} of {m.group(2)} · {m.group(3)} available"
        else:
            rest.append(why)
    return memory, rest


def _download(c: Candidate) -> str:
    if c.artifact.embedded:
        return "embedded"
    if any(why.startswith("already on this PC") for why in c.reasons):
        return "on this PC"
    return _gb(c.artifact.download_bytes)


def explain_markdown(r: Ranking, limit: int | None = None, running: Candidate | None = None) -> str:
    """The page's "Why this model": the ranked candidates as a table (the running one first and marked when it
    is among them, else the first choice), then what cannot run here, grouped by reason and folded. HTML
    (Markdown passes it through), every value escaped."""
    ranked = list(r.candidates[:limit] if limit else r.candidates)
    here = next((c for c in r.candidates if running is not None and c.label == running.label), None)
    if here is not None:  # the running one may be a later choice (the first failed to load): it leads the table
        ranked = [here] + [c for c in ranked if c.label != here.label]
    rows = []
    for i, c in enumerate(ranked, 1):
        memory, reasons = _memory(c.reasons)
        mark = ("running now" if here is not None else "first choice") if i == 1 else ""
        why = "".join(f"<li>{html.escape(w)}</li>" for w in reasons)
        rows.append(
            f"<tr class='{'first' if i == 1 else ''}'><td>{i}</td><td><b>{html.escape(c.artifact.name)}</b>"
            + (f"<br><span class='badge run'>{mark}</span>" if mark else "")
            + f"<br><code>{html.escape(c.artifact.id)}</code></td>"
            f"<td>{html.escape(registry.display_name(c.artifact.engine))}</td>"
            f"<td>{html.escape(c.device_name)}</td><td>{html.escape(_download(c))}</td>"
            f"<td>{html.escape(memory) or '?'}</td><td><ul>{why}</ul></td></tr>")
    pref = r.preference
    head = (f"<p class='why-pref'>Preference <b>{html.escape(pref.mode)}</b> (resolved: {html.escape(r.mode)}), "
            f"device <b>{html.escape(pref.device)}</b>"
            + (f", model <b>{html.escape(pref.model)}</b>" if pref.model else "") + "</p>")
    table = ("<table class='why-table'><thead><tr><th>#</th><th>model</th><th>engine</th><th>device</th>"
             "<th>download</th><th>memory: needed · available</th><th>why</th></tr></thead>"
             f"<tbody>{''.join(rows)}</tbody></table>") if rows else "<p>No model can run with these choices.</p>"
    if running is not None and here is None:
        head += (f"<p class='why-running'>Running now: <b>{html.escape(running.artifact.name)}</b> on "
                 f"{html.escape(running.device_name)}, not among these choices.</p>")
    return f"<div class='why'>{head}{table}{rejected_groups(r)}</div>"


def rejected_groups(r: Ranking) -> str:
    """What cannot run here, one folded line per reason ("12 × no GPU for OpenVINO: ..."), details on a click.
    A rejection is filed under its last reason: the device's or the engine's, which caching or a download
    would not cure."""
    groups: dict[str, list] = {}
    for rej in r.rejected:
        groups.setdefault(rej.reasons[-1] if rej.reasons else "no reason given", []).append(rej)
    if not groups:
        return ""
    out = [f"<h4>Not usable on this PC ({len(r.rejected)})</h4>"]
    for reason, rejs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        items = "".join(f"<li><code>{html.escape(x.artifact_id)}</code> ({html.escape(x.device_kind)}): "
                        f"{html.escape('; '.join(x.reasons))}</li>" for x in rejs)
        out.append(f"<details class='rej'><summary><b>{len(rejs)}</b> × {html.escape(reason)}</summary>"
                   f"<ul>{items}</ul></details>")
    return "".join(out)
