"""The Benchmark tab's logic: `launch.py --bench` as a child process of the app (one at a time per app), its
progress lines while it runs, Stop, and the newest saved report (its chart and the table of its figures).

No Gradio here: webui/tabs/benchmark.py wires the tab's controls to a `BenchTab` (one per app, made in app/serve.py,
closed when the app exits) and turns each `View` into updates; it refuses guests before anything here runs.

The child is launch.py itself, with the app's own Python, launch.py's set-up first (it adds the chart tools on a
first benchmark; `BenchTab.env`), `--offline`, the app's home (`PHI3PC_HOME`) and a new folder under
`<home>/bench/` named as --bench names its own. It runs in a process group of its own, so Stop (and the
app's exit) ends it with everything it started (the bench runs peak-memory and llama.cpp children). A run
that is stopped or fails leaves no folder behind, so it is never shown as the newest report.
"""

from __future__ import annotations

import base64
import html
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from app.environment import INSIDE_FLAG
from bench import table

ROOT = Path(__file__).resolve().parents[1]
HOST_ONLY = "Only the host can run the benchmark"
QUICK = ("--runs", "1", "--new-tokens", "16", "--prompt-tokens", "64", "--no-save")  # too short to rank by
SHOWN_LINES = 40  # the run's last lines shown under the status
STOP_GRACE_S = 5.0  # after SIGTERM, how long the group gets before SIGKILL
POLL_S = 0.5  # how often a running benchmark's lines are shown
CHART_MAX_BYTES = 8_000_000  # a report.png larger than this is not inlined into the page
# Measured here (a 2-core Xeon VM, the embedded model, llama.cpp installed, a quiet moment): the full run 1:52,
# the quick one 0:13 (0:24 while other work ran).
ABOUT = ("While it runs, chat answers are slower: the benchmark shares the CPU and memory with them. It measures "
         "every model cached here (and the embedded one) on each engine and device, cold and warm: about 2 "
         "minutes per model on a 2-core PC (llama.cpp, when installed, takes most of that); a quick run (one "
         "run of 16 tokens) about 15 seconds per model. A full run's figures are saved for this PC and the "
         "model ranking uses them; a quick run's are only shown.")


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


# -- a child process, one at a time ---------------------------------------------------------------------
class Run:
    """One child process in a process group of its own. A thread reads its output (stdout and stderr together)
    line by line, another waits for it to end, ends whatever of its group is left and reaps it; then
    `on_end(run)` is called, and `done` is set."""

    def __init__(self, argv: list[str], env: dict | None = None, cwd: Path | None = None, out: Path | None = None,
                 label: str = "", on_end: Callable[[Run], None] | None = None):
        group = ({"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if os.name == "nt"
                 else {"start_new_session": True})
        self.out, self.label, self._on_end = out, label, on_end
        self.lines: list[str] = []
        self.returncode: int | None = None
        self.stopped = False
        self.started = time.monotonic()
        self.ended: float | None = None
        self._lock = threading.Lock()  # the group is signalled only while its leader is not yet reaped
        self._exited = False
        self._done = threading.Event()
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, encoding="utf-8", errors="replace",
                                     bufsize=1, **group)
        self._reader = threading.Thread(target=self._read, name="bench-output", daemon=True)
        self._reader.start()
        threading.Thread(target=self._wait_end, name="bench-child", daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    def tail(self, n: int = SHOWN_LINES) -> str:
        return "\n".join(self.lines[-n:])

    @property
    def succeeded(self) -> bool:
        return self.done and self.returncode == 0 and not self.stopped

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\r\n"))

    def _wait_end(self) -> None:
        try:
            if os.name != "nt" and hasattr(os, "waitid"):
                try:  # ended, not yet reaped: its id (its group's) cannot be reused until then
                    os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOWAIT)
                except ChildProcessError:
                    pass
            with self._lock:
                if os.name != "nt":
                    self._signal_group(signal.SIGKILL)  # whatever of its group is still running (normally none)
                self.returncode = self.proc.wait()
                self._exited = True
            self._reader.join(STOP_GRACE_S)  # its last lines
            if not self._reader.is_alive():
                self.proc.stdout.close()
            self.ended = time.monotonic()
            if self._on_end is not None:
                self._on_end(self)
        finally:
            self._done.set()

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """End it and everything it started: SIGTERM to its group, SIGKILL after `grace_s` (Windows: taskkill)."""
        with self._lock:
            if self._exited:
                return
            self.stopped = True
            if os.name == "nt":
                subprocess.run(["taskkill", "/F", "/T", "/PID", str(self.proc.pid)], capture_output=True)
            else:
                self._signal_group(signal.SIGTERM)
        if not self.wait(grace_s):
            with self._lock:
                if not self._exited:
                    if os.name == "nt":
                        self.proc.kill()
                    else:
                        self._signal_group(signal.SIGKILL)
            self.wait(grace_s)


class Runner:
    """At most one child process at a time; made per app, so two apps on one PC each have their own."""

    def __init__(self):
        self._lock = threading.Lock()
        self._run: Run | None = None
        self._closed = False

    def start(self, argv: list[str], **kwargs) -> tuple[Run | None, bool]:
        """(the run, True) when it started; (the one already running, False) when one runs; (None, False)
        once closed."""
        with self._lock:
            if self._closed:
                return None, False
            if self._run is not None and not self._run.done:
                return self._run, False
            self._run = Run(argv, **kwargs)
            return self._run, True

    def current(self) -> Run | None:
        """The run going on now, if any."""
        run = self._run
        return run if run is not None and not run.done else None

    def stop(self) -> Run | None:
        run = self.current()
        if run is not None:
            run.stop()
        return run

    def close(self) -> None:
        """The app exits: end what runs, start nothing more."""
        with self._lock:
            self._closed = True
            run = self._run
        if run is not None:
            run.stop()


# -- what the tab shows -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class View:
    status: str  # HTML: what is shown, or what is going on
    log: str = ""  # the run's last lines
    chart: str | None = None  # HTML; None: leave what is shown
    figures: str | None = None  # HTML; None: leave what is shown
    running: bool = False


def no_report(home: Path) -> str:
    return (f"<p id='bench-none'>No benchmark has been saved on this PC yet (none in "
            f"<code>{html.escape(str(Path(home) / 'bench'))}</code>). Press <b>Run benchmark</b>, or run "
            "<code>python launch.py --bench</code> in a terminal.</p>")


def measured_line(report: dict, folder: Path) -> str:
    """When and where a report was measured, and with what settings."""
    m, s = report.get("machine", {}), report.get("settings", {})
    when = str(report.get("created", "?")).replace("T", " ")[:16]
    where = ", ".join(x for x in (
        f"{m['cores']} cores" if m.get("cores") else "", f"{m['threads']} threads" if m.get("threads") else "",
        f"{m['memory_bytes'] / 1e9:.0f} GB" if m.get("memory_bytes") else "", m.get("os", "")) if x)
    how = (f"{s.get('new_tokens', '?')} new tokens, {s.get('runs', '?')} run(s), "
           f"long prompt ~{s.get('prompt_tokens', '?')} tokens")
    took = f"; took {_clock(s['seconds'])}" if s.get("seconds") else ""
    load = m.get("load_average") or {}
    busy = (f"; load average {load['before']:.1f} before, {load['after']:.1f} after, on {load.get('cores', '?')} "
            "cores (other work slows the figures)" if load.get("before") is not None and load.get("after") is not None
            else "")
    return (f"<p id='bench-when'>Measured <b>{html.escape(when)}</b> on <b>{html.escape(m.get('cpu', '?'))}</b>"
            f"{' (' + html.escape(where) + ')' if where else ''}: {html.escape(how)}{html.escape(took)}"
            f"{html.escape(busy)}. Saved in <code>{html.escape(str(folder))}</code>.</p>")


def figures_html(report: dict) -> str:
    """The report's figures as bench/table.py gives them (the console's table), as an HTML table."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
                   for row in table.rows(report))
    bw = (report.get("bandwidth") or {}).get("bytes_per_s")
    extra = [f"Memory read bandwidth {bw / 1e9:.1f} GB/s." if bw else ""]
    extra += [f"Not measured: {u['key']}: {u['reason']}" for u in report.get("unusable", [])]
    extra += [f"Note: {n}" for n in report.get("notes", [])]
    lines = "".join(f"<p>{html.escape(x)}</p>" for x in extra if x)
    return (f"<div class='why'><table class='why-table' id='bench-table'><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table></div>{lines}")


def chart_html(report: dict, folder: Path) -> str:
    """report.png inlined (the page serves no files by path)."""
    name = (report.get("files") or {}).get("chart")
    path = Path(folder) / name if name else None
    if path is None or not path.is_file():
        return "<p id='bench-no-chart'>This report has no chart (see its notes below).</p>"
    size = path.stat().st_size
    if size > CHART_MAX_BYTES:
        return f"<p id='bench-no-chart'>The chart is too large to show here: <code>{html.escape(str(path))}</code></p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f"<img id='bench-chart' alt='The benchmark chart: per-token latency and decode tokens/s by engine and "
            f"device' src='data:image/png;base64,{data}' style='max-width:100%;height:auto'>")


def failure_line(returncode: int | None, lines: list[str]) -> str:
    """One plain sentence for a run that failed: its own `error:` line, else its last line (a traceback's
    last line names the error), else how it ended."""
    said = [line.strip() for line in lines if line.strip()]
    error = next((line for line in reversed(said) if line.startswith("error:")), None)
    if error is not None:
        reason = error.removeprefix("error:").strip()
    elif said:
        reason = said[-1]
    else:
        reason = "it printed nothing"
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        how = f"it was ended by {name}" + (" (often: the PC ran out of memory)" if name == "SIGKILL" else "")
    else:
        how = f"exit code {returncode}"
    return f"The benchmark failed ({how}): {reason}"


class BenchTab:
    """The tab's state for one app: its home, the one benchmark that may run, and what to show."""

    def __init__(self, home: Path, python: str = sys.executable, launch: Path = ROOT / "launch.py",
                 quick_args: tuple[str, ...] = QUICK):
        self.home = Path(home)
        self.runner = Runner()
        self._python, self._launch, self._quick = python, Path(launch), tuple(quick_args)

    # -- the child ----------------------------------------------------------------------------------------
    def new_folder(self) -> Path:
        """As --bench names its own (`<home>/bench/YYYYmmdd-HHMMSS`), never one that exists."""
        base = self.home / "bench" / time.strftime("%Y%m%d-%H%M%S")
        folder, n = base, 1
        while folder.exists():
            n += 1
            folder = base.with_name(f"{base.name}-{n}")
        return folder

    def command(self, quick: bool, out: Path) -> list[str]:
        return [self._python, str(self._launch), "--bench", "--offline", "--out", str(out),
                *(self._quick if quick else ())]

    def env(self) -> dict[str, str]:
        """The app's environment without launch.py's re-exec mark: the child runs launch.py's set-up first, which
        installs the chart tools (requirements-bench.txt) on a first benchmark, and goes on without them when it
        cannot (offline: a report without its chart). Up to date, the set-up is a few hash checks."""
        env = dict(os.environ, **{"PHI3PC_HOME": str(self.home), "PYTHONUNBUFFERED": "1"})
        env.pop(INSIDE_FLAG, None)
        return env

    def _tidy(self, run: Run) -> None:
        """A run that was stopped or failed leaves nothing: a half report is never the newest one."""
        out = run.out
        complete = run.returncode == 0 and not run.stopped and out is not None and (out / "report.json").is_file()
        if not complete and out is not None and out.parent == self.home / "bench":
            shutil.rmtree(out, ignore_errors=True)

    # -- what the handlers do -----------------------------------------------------------------------------
    def open(self) -> Iterator[View]:
        """The tab is opened: the newest saved report, or the benchmark running now, followed to its end."""
        run = self.runner.current()
        if run is None:
            yield self.saved()
            return
        yield from self._follow(run, "")

    def run(self, quick: bool) -> Iterator[View]:
        """Start a benchmark and follow it; while one runs, say so and follow that one instead."""
        out = self.new_folder()
        run, started = self.runner.start(self.command(quick, out), env=self.env(), cwd=ROOT, out=out,
                                         label="quick" if quick else "full", on_end=self._tidy)
        if run is None:
            yield View("<p>The app is stopping: no benchmark is started now.</p>")
            return
        note = "" if started else (f"<p id='bench-busy'>A benchmark is already running (started "
                                   f"{_clock(run.elapsed())} ago): only one runs at a time, so none was started; "
                                   "here is that one.</p>")
        yield from self._follow(run, note)

    def stop(self) -> str:
        run = self.runner.stop()
        if run is None:
            return "No benchmark is running."
        return "The benchmark was stopped." if run.stopped else "The benchmark had already ended."

    def close(self) -> None:
        self.runner.close()

    # -- views --------------------------------------------------------------------------------------------
    def _follow(self, run: Run, note: str) -> Iterator[View]:
        while not run.wait(POLL_S):
            yield View(note + f"<p id='bench-running'>Running the {run.label} benchmark: {_clock(run.elapsed())} "
                       "so far. Chat answers are slower meanwhile (it shares the CPU). <b>Stop</b> ends it; "
                       "nothing of a stopped run is kept.</p>", run.tail(), running=True)
        yield self.finished(run)

    def finished(self, run: Run) -> View:
        took = _clock(run.elapsed())
        if run.succeeded and run.out is not None and (run.out / "report.json").is_file():
            import json

            try:
                report = json.loads((run.out / "report.json").read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                return self.saved(f"<p id='bench-failed'>The benchmark ended but its report cannot be read: "
                                  f"{html.escape(str(err))}</p>", run.tail())
            return View(f"<p id='bench-done'>Done in {took}: the new report.</p>" + measured_line(report, run.out),
                        run.tail(), chart_html(report, run.out), figures_html(report))
        if run.stopped:
            head = f"<p id='bench-stopped'>Stopped after {took}: nothing of that run was kept.</p>"
        else:
            head = (f"<p id='bench-failed'>{html.escape(failure_line(run.returncode, run.lines))}</p><p>Its last "
                    "lines are below; nothing of that run was kept.</p>")
        return self.saved(head, run.tail())

    def saved(self, head: str = "", log: str = "") -> View:
        """The newest saved report (after `head`), or a line saying there is none and how to make one."""
        found = table.latest(self.home)
        if found is None:
            return View(head + no_report(self.home), log, "", "")
        report, folder = found
        shown = "<p>Shown: the last saved report.</p>" if head else ""
        return View(head + shown + measured_line(report, Path(folder)), log, chart_html(report, Path(folder)),
                    figures_html(report))
