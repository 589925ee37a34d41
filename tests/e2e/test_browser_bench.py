"""The Benchmark tab in a real browser on the real app: a quick `launch.py --bench` run for real on the embedded
model (its chart and table appear), Stop (nothing of the stopped run is kept), one run at a time across tabs,
and in LAN mode: a guest neither sees the tab nor can call its handlers; the host's running benchmark ends
when the app does.

The app runs in a home of its own (the embedded model linked in), so the figures these runs save for the
policy never reach the other tests' app home.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.browser_page import NEEDS_CHROMIUM, log_in, people, serving, shot, tab_names

pytestmark = NEEDS_CHROMIUM
HOST_PW, GUEST_PW = "host-pw-51c3", "guest-pw-8d2e"
RUNNING = "#bench-status #bench-running"


@pytest.fixture(scope="module")
def home(embedded_gguf, app_home, tmp_path_factory) -> Path:
    own = tmp_path_factory.mktemp("bench-home")
    (own / "embedded").symlink_to(app_home / "embedded", target_is_directory=True)
    return own


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    return {"HF_HOME": str(tmp_path_factory.mktemp("bench-hf"))}  # nothing cached: the bench measures the embedded


@pytest.fixture(scope="module")
def app(home, env):
    with serving(home, env=env) as running:
        yield running


def _benches(app) -> list[psutil.Process]:
    """The app's `launch.py --bench` children that are still running."""
    found = []
    for p in psutil.Process(app.proc.pid).children(recursive=True):
        try:
            if "--bench" in p.cmdline() and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except psutil.NoSuchProcess:
            pass
    return found


def _reports(home: Path) -> list[Path]:
    return sorted((home / "bench").glob("*/report.json"))


def _open_tab(page) -> None:
    page.get_by_role("tab", name="Benchmark").click()
    page.wait_for_selector("#bench-status p", timeout=30_000)


def _decode_figures(page) -> list[str]:
    heads = page.locator("#bench-table thead th").all_inner_texts()
    column = heads.index("decode tok/s")
    return [row.locator("td").nth(column).inner_text() for row in page.locator("#bench-table tbody tr").all()]


def test_a_quick_benchmark_runs_for_real_and_shows_its_chart_and_table(app, browser, home):
    with people(browser, app.url) as person:
        me = person()
        _open_tab(me.page)
        assert "No benchmark has been saved" in me.page.locator("#bench-status").inner_text()
        about = me.page.locator("#bench-about").inner_text()
        assert "chat answers are slower" in about and "minutes" in about
        assert me.page.locator("#bench-stop").is_disabled()
        me.page.locator("#bench-quick input").check()
        me.page.click("#bench-run")
        me.page.wait_for_selector(RUNNING, timeout=30_000)
        assert me.page.locator("#bench-stop").is_enabled() and me.page.locator("#bench-run").is_disabled()
        me.page.wait_for_function("() => document.querySelector('#bench-log textarea')?.value.includes('probe')",
                                  timeout=60_000)  # its progress lines stream in while it runs
        assert me.page.locator(RUNNING).is_visible()
        me.page.wait_for_selector("#bench-status #bench-done", timeout=180_000)
        chart = me.page.locator("#bench-chart")
        assert chart.is_visible() and chart.evaluate("img => img.complete && img.naturalWidth > 400")
        figures = _decode_figures(me.page)
        assert figures and all(re.fullmatch(r"\d+\.\d", f) and float(f) > 0 for f in figures), figures
        assert "OpenVINO GenAI · CPU · SmolLM2-135M" in me.page.locator("#bench-table").inner_text()
        shot(me.page, "benchmark.png", full_page=True)  # the README's picture of the tab
        status = me.page.locator("#bench-status").inner_text()
        (report,) = _reports(home)
        assert "Measured" in status and str(report.parent) in status and "1 run(s)" in status
        assert json.loads(report.read_text())["settings"]["runs"] == 1
        assert me.page.locator("#bench-run").is_enabled() and me.page.locator("#bench-stop").is_disabled()
        assert not _benches(app)
        me.page.reload()  # opened again: the saved report
        me.open()
        _open_tab(me.page)
        me.page.wait_for_selector("#bench-chart")
        assert str(report.parent) in me.page.locator("#bench-status").inner_text()
        me.page.get_by_role("tab", name="Chat").click()
        me.ask("What is the capital of France?")
        assert "Paris" in me.wait_answers(1)


def test_one_benchmark_at_a_time_and_stop_keeps_nothing_of_it(app, browser, home):
    before = _reports(home)
    with people(browser, app.url) as person:
        me, other = person(), person()
        _open_tab(other.page)  # opened before the run: its Run button is enabled
        _open_tab(me.page)
        me.page.locator("#bench-quick input").uncheck()
        me.page.click("#bench-run")
        me.page.wait_for_selector(RUNNING, timeout=30_000)
        (child,) = _benches(app)
        assert other.page.locator("#bench-run").is_enabled()
        other.page.click("#bench-run")  # a second click, in another tab, while one runs: it says so and follows
        other.page.wait_for_selector("#bench-status #bench-busy", timeout=30_000)
        assert other.page.locator("#bench-stop").is_enabled() and other.page.locator("#bench-run").is_disabled()
        assert [p.pid for p in _benches(app)] == [child.pid]  # no second one
        me.page.wait_for_function("() => document.querySelector('#bench-log textarea')?.value.includes('load ')",
                                  timeout=60_000)
        me.page.click("#bench-stop")
        for page in (me.page, other.page):
            page.wait_for_selector("#bench-status #bench-stopped", timeout=30_000)
            status = page.locator("#bench-status").inner_text()
            assert "nothing of that run was kept" in status and str(before[-1].parent) in status  # the old one
        child.wait(10)
        assert not _benches(app) and _reports(home) == before
        assert len(list((home / "bench").glob("2*"))) == len(before)  # its folder is gone too
        assert me.page.locator("#bench-run").is_enabled() and me.page.locator("#bench-stop").is_disabled()


def _bench_handlers(config: dict) -> dict[str, int]:
    """The dependency ids of the Benchmark tab's handlers, found by their components' elem_id."""
    ids = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
    tab = next(c["id"] for c in config["components"] if c.get("props", {}).get("label") == "Benchmark")
    found = {}
    for d in config["dependencies"]:
        for target, event in d["targets"]:
            if (ids.get(target), event) in (("bench-run", "click"), ("bench-stop", "click")):
                found[ids[target]] = d["id"]
            if target == tab and event == "select":
                found["open"] = d["id"]
    return found


def _call(client: httpx.Client, fn_index: int, data: list) -> dict:
    """A handler called as the page calls it (queue/join, then the event stream): its final message."""
    session = uuid.uuid4().hex[:11]
    joined = client.post("/gradio_api/queue/join", json={"data": data, "event_data": None, "fn_index": fn_index,
                                                         "trigger_id": None, "session_hash": session})
    assert joined.status_code == 200, joined.text
    with client.stream("GET", f"/gradio_api/queue/data?session_hash={session}", timeout=60) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                message = json.loads(line[6:])
                if message.get("msg") == "process_completed":
                    return message
    raise AssertionError("the event stream ended without an answer")


def test_on_the_lan_a_guest_neither_sees_nor_runs_the_benchmark_and_it_ends_with_the_app(home, env, browser):
    before = sorted((home / "bench").glob("2*"))
    with serving(home, "--lan", "--auth", f"guest:{GUEST_PW}", "--admin", f"host:{HOST_PW}", env=env) as lan:
        guest = browser.new_context()
        page = guest.new_page()
        log_in(page, lan.url, "guest", GUEST_PW)
        assert tab_names(page) == ["Chat"]
        guest.close()
        client = httpx.Client(base_url=lan.url, timeout=30)
        assert client.post("/login", data={"username": "guest", "password": GUEST_PW}).status_code == 200
        handlers = _bench_handlers(client.get("/config").json())
        assert set(handlers) == {"bench-run", "bench-stop", "open"}
        for name, data in (("bench-run", [False]), ("open", []), ("bench-stop", [])):
            answer = _call(client, handlers[name], data)
            assert not answer.get("success") and "Only the host can run the benchmark" in json.dumps(answer), answer
        assert not _benches(lan) and sorted((home / "bench").glob("2*")) == before  # nothing started
        host = browser.new_context()
        page = host.new_page()
        log_in(page, lan.url, "host", HOST_PW)
        assert tab_names(page) == ["Chat", "This PC", "Why this model", "Benchmark"]
        _open_tab(page)
        assert "Measured" in page.locator("#bench-status").inner_text()  # the report the first test saved
        page.locator("#bench-quick input").uncheck()
        page.click("#bench-run")
        page.wait_for_selector(RUNNING, timeout=30_000)
        (child,) = _benches(lan)
        group = [child, *child.children(recursive=True)]
        time.sleep(1)
        host.close()
    # the app ended cleanly (serving checks it) and took the benchmark with it
    psutil.wait_procs(group, timeout=10)
    assert all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in group)
    assert sorted((home / "bench").glob("2*")) == before  # the unfinished run left nothing
