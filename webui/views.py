"""Plain-text and table views of the profile and the ranking, shared by the terminal and the page."""

from __future__ import annotations

from capabilities import MachineProfile
from models.policy import Ranking

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


def device_rows(p: MachineProfile) -> tuple[tuple[str, str, str, str], ...]:
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
        rows.append((f"{d.name} [{d.id}]", d.kind, "yes" if d.present else "no", ", ".join(details)))
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


def explain_markdown(r: Ranking, limit: int = 5) -> str:
    out = ["**Chosen first, and the next choices:**", ""]
    for i, c in enumerate(r.candidates[:limit], 1):
        out.append(f"{i}. **{c.artifact.name}** — {c.artifact.engine} on {c.device_name} "
                   f"(score {c.score:.1f})")
        out.extend(f"    - {why}" for why in c.reasons)
    if r.rejected:
        out += ["", "**Not usable on this PC:**", ""]
        out.extend(f"- {rej.artifact_id} ({rej.device_kind}): {'; '.join(rej.reasons)}" for rej in r.rejected)
    return "\n".join(out)
