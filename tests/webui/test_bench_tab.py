"""The Benchmark tab's logic (webui/bench_tab.py) without a browser: a recorded report rendered, the line when
there is none, one child process at a time, Stop ending its whole process group, and a real failing
`launch.py --bench`. The tab on the real app in a real browser: tests/e2e/test_browser_bench.py.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import sys
import time
from html.parser import HTMLParser

import psutil
import pytest

from bench import table
from tests.conftest import ROOT
from webui.bench_tab import QUICK, BenchTab, Run, Runner, chart_html, failure_line, figures_html, measured_line

RECORDED = ROOT / "docs" / "bench"  # a real --bench report of this machine and its chart
SLEEPER = "import sys, time; print('started', flush=True); time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 60)"


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _cells(html_text: str) -> list[list[str]]:
    parser = _Cells()
    parser.feed(html_text)
    return parser.rows


def _report() -> dict:
    return json.loads((RECORDED / "report.json").read_text(encoding="utf-8"))


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_for(condition, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# -- a recorded report ------------------------------------------------------------------------------------
def test_a_recorded_report_renders_as_the_table_models_bench_table_gives():
    report = _report()
    rows = _cells(figures_html(report))
    assert rows[0] == list(table.COLUMNS)
    assert rows[1:] == [list(r) for r in table.rows(report)]  # the same cells, nothing reformatted here
    assert len(rows) - 1 == len(report["targets"]) + len(report["peers"])
    decode = table.COLUMNS.index("decode tok/s")
    assert all(re.fullmatch(r"\d+\.\d", r[decode]) for r in rows[1:])


def test_a_report_s_text_is_escaped():
    report = _report()
    report["targets"][0]["artifact_name"] = "<script>alert(1)</script>"
    report["notes"] = ["a <b>note</b>"]
    shown = figures_html(report)
    assert "<script>" not in shown and "&lt;script&gt;" in shown and "a &lt;b&gt;note&lt;/b&gt;" in shown


def test_the_chart_is_inlined_and_a_report_without_one_says_so(tmp_path):
    report = _report()
    shown = chart_html(report, RECORDED)
    data = re.search(r"src='data:image/png;base64,([^']+)'", shown).group(1)
    assert base64.b64decode(data) == (RECORDED / "report.png").read_bytes()
    without = dict(report, files={"json": "report.json", "chart": None})
    assert "no chart" in chart_html(without, RECORDED) and "<img" not in chart_html(without, RECORDED)
    assert "no chart" in chart_html(report, tmp_path)  # report.png missing from its folder


def test_when_and_where_it_was_measured():
    report = {"created": "2026-12-01T14:34:07", "settings": {"new_tokens": 128, "runs": 3, "prompt_tokens": 512,
                                                              "seconds": 221.4},
              "machine": {"cpu": "Intel(R) Xeon(R) Processor", "cores": 2, "threads": 2,
                          "load_average": {"before": 4.04, "after": 4.66, "cores": 2}}}
    line = measured_line(report, RECORDED)
    for part in ("2026-12-01 14:34", "Intel(R) Xeon(R) Processor", "2 cores", "128 new tokens", "3 run(s)",
                 "~512 tokens", "took 3:41", "load average 4.0 before, 4.7 after", str(RECORDED)):
        assert part in line, part


def test_no_report_says_so_and_how_to_make_one_then_the_newest_report_is_shown(tmp_path):
    tab = BenchTab(tmp_path / "home")
    empty = tab.saved()
    assert "No benchmark has been saved" in empty.status and "python launch.py --bench" in empty.status
    assert empty.chart == "" and empty.figures == "" and not empty.running
    older, newer = tmp_path / "home" / "bench" / "20260101-000000", tmp_path / "home" / "bench" / "20260102-000000"
    for folder, cpu in ((older, "Older CPU"), (newer, "Newer CPU")):
        shutil.copytree(RECORDED, folder)
        report = _report()
        report["machine"]["cpu"] = cpu
        (folder / "report.json").write_text(json.dumps(report), encoding="utf-8")
        time.sleep(0.02)
    shown = tab.saved()
    assert "Newer CPU" in shown.status and "Older CPU" not in shown.status and str(newer) in shown.status
    assert "<img id='bench-chart'" in shown.chart and "<table" in shown.figures


def test_failure_lines_are_one_plain_sentence():
    lines = ["[  0.20s] probe    this machine", "error: nothing to measure: no cached model"]
    assert failure_line(1, lines) == "The benchmark failed (exit code 1): nothing to measure: no cached model"
    traceback = ["Traceback (most recent call last):", '  File "x.py", line 1, in <module>',
                 "RuntimeError: the engine went away"]
    assert failure_line(1, traceback) == "The benchmark failed (exit code 1): RuntimeError: the engine went away"
    killed = failure_line(-9, ["[ 2.00s] load ..."])
    assert "ended by SIGKILL" in killed and "ran out of memory" in killed
    assert failure_line(3, []) == "The benchmark failed (exit code 3): it printed nothing"


# -- one child at a time --------------------------------------------------------------------------------
def test_one_run_at_a_time_and_stop_ends_it():
    runner = Runner()
    first, started = runner.start([sys.executable, "-c", SLEEPER])
    try:
        assert started
        _wait_for(lambda: first.lines == ["started"])
        again, started_again = runner.start([sys.executable, "-c", SLEEPER])
        assert again is first and not started_again  # no second process
        assert runner.current() is first
        assert runner.stop() is first
        assert first.done and first.stopped and not first.succeeded and _gone(first.pid)
        assert runner.current() is None
        second, started = runner.start([sys.executable, "-c", SLEEPER, "0"])  # one ended: the next may run
        assert started and second is not first
        assert second.wait(20) and second.returncode == 0 and second.succeeded and second.lines == ["started"]
    finally:
        runner.close()
    closed, started = runner.start([sys.executable, "-c", SLEEPER])
    assert closed is None and not started  # closed with the app: nothing more starts


GRANDPARENT = """import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(child.pid, flush=True)
time.sleep(float(sys.argv[1]))
"""


def test_stop_ends_the_whole_process_group():
    run = Run([sys.executable, "-c", GRANDPARENT, "60"])
    _wait_for(lambda: run.lines)
    grandchild = int(run.lines[0])
    assert not _gone(grandchild)
    run.stop()
    assert run.done and run.stopped and _gone(run.pid)
    _wait_for(lambda: _gone(grandchild))


def test_what_a_run_leaves_running_when_it_ends_is_ended(tmp_path):
    run = Run([sys.executable, "-c", GRANDPARENT, "0.5"])
    assert run.wait(20) and run.returncode == 0 and not run.stopped
    _wait_for(lambda: _gone(int(run.lines[0])))


def test_app_exit_ends_a_running_benchmark(tmp_path):
    script = tmp_path / "slow.py"
    script.write_text("import time; print('started', flush=True); time.sleep(60)")
    tab = BenchTab(tmp_path / "home", launch=script)
    views = tab.run(quick=False)
    first = next(views)
    assert first.running and "Running the full benchmark" in first.status
    run = tab.runner.current()
    tab.close()
    assert run.done and _gone(run.pid)
    last = list(views)[-1]
    assert not last.running and "Stopped after" in last.status


# -- the tab with a stand-in for --bench (a real process that prints and sleeps) ---------------------------
def test_a_second_run_says_one_runs_and_follows_it_a_stopped_run_leaves_no_report(tmp_path):
    script = tmp_path / "bench_stand_in.py"
    # writes a complete-looking report at once, then runs on: stopped, it must not become the newest report
    script.write_text("import shutil, sys, time\n"
                      "out = sys.argv[sys.argv.index('--out') + 1]\n"
                      f"shutil.copytree({str(RECORDED)!r}, out)\n"
                      "print('[  0.10s] measure  pretending', flush=True)\n"
                      "time.sleep(60)\n")
    tab = BenchTab(tmp_path / "home", launch=script)
    mine = tab.run(quick=True)
    first = next(mine)
    run = tab.runner.current()
    assert first.running and "quick" in first.status and run is not None
    assert run.proc.args[2:6] == ["--bench", "--offline", "--out", str(run.out)] and run.proc.args[6:] == list(QUICK)
    assert run.out.parent == tab.home / "bench"
    _wait_for(lambda: (run.out / "report.json").is_file() and run.lines)
    other = tab.run(quick=False)
    busy = next(other)
    assert "already running" in busy.status and busy.running and tab.runner.current() is run  # not a second
    opened = next(tab.open())
    assert opened.running and "[  0.10s] measure  pretending" in opened.log
    assert tab.stop() == "The benchmark was stopped."
    for views in (mine, other):
        last = list(views)[-1]
        assert "Stopped after" in last.status and not last.running
        assert "No benchmark has been saved" in last.status  # not the stopped run's report
    assert not run.out.exists() and table.latest(tab.home) is None
    assert tab.stop() == "No benchmark is running."


def test_the_env_runs_launch_py_in_place_with_the_app_s_home(tmp_path):
    tab = BenchTab(tmp_path / "home")
    env = tab.env()
    # no re-exec mark: launch.py's set-up runs first and adds the chart tools on a first benchmark
    assert "PHI3PC_IN_VENV" not in env and env["PHI3PC_HOME"] == str(tmp_path / "home")
    command = tab.command(False, tmp_path / "out")
    assert command[:2] == [sys.executable, str(ROOT / "launch.py")]
    assert command[2:] == ["--bench", "--offline", "--out", str(tmp_path / "out")]


# -- the real launch.py --bench, failing ---------------------------------------------------------------------
def test_a_real_bench_with_nothing_to_measure_fails_in_one_plain_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # nothing cached, offline, no embedded model in the home
    before = dict(os.environ)
    tab = BenchTab(tmp_path / "home")
    views = list(tab.run(quick=True))
    last = views[-1]
    assert not last.running
    assert "The benchmark failed (exit code 1): nothing to measure" in last.status, last.status + last.log
    assert "Traceback" not in last.log and "error: nothing to measure" in last.log
    assert "No benchmark has been saved" in last.status
    assert not any((tmp_path / "home" / "bench").glob("2*"))  # no folder of the failed run is left
    assert dict(os.environ) == before  # the child's environment is its own


@pytest.mark.parametrize("quick", [True, False])
def test_quick_is_fewer_runs_and_tokens_than_the_default(quick, tmp_path):
    from app.arguments import build_parser

    args = build_parser().parse_args(BenchTab(tmp_path).command(quick, tmp_path / "out")[2:])
    assert args.bench and args.offline and args.out == str(tmp_path / "out")
    if quick:
        assert args.runs < 3 and args.new_tokens < 128 and args.prompt_tokens < 512
    else:
        assert (args.runs, args.new_tokens, args.prompt_tokens) == (3, 128, 512)
