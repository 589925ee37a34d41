"""The page in a real browser (Debian's Chromium, driven by Playwright): type, send, watch it stream, stop."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.live_app import start_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="needs a Chromium (Debian: apt-get install chromium); CI installs it",
)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def page(embedded_gguf, app_home, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    app = start_app("--offline", home=app_home)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        pg = browser.new_page(viewport={"width": 1200, "height": 900})
        pg.goto(app.url)
        pg.wait_for_selector("#prompt textarea")
        yield pg
        pg.screenshot(path=str(tmp_path_factory.mktemp("shots") / "page.png"), full_page=True)
        browser.close()
    app.stop()


def bot_texts(pg) -> list[str]:
    return pg.locator("#chatbot .message.bot, #chatbot [data-testid='bot']").all_inner_texts()


WATCH_BOT_TEXT = """() => {
  window.__seen = [];
  new MutationObserver(() => {
    const b = [...document.querySelectorAll('#chatbot [data-testid="bot"]')];
    if (b.length) window.__seen.push(b[b.length - 1].innerText.length);
  }).observe(document.querySelector('#chatbot'), {subtree: true, childList: true, characterData: true});
}"""


def test_a_question_streams_into_the_page_with_figures_under_it(page):
    page.evaluate(WATCH_BOT_TEXT)
    page.fill("#prompt textarea", "What is the capital of France?")
    page.click("#send")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#chatbot [data-testid=\"bot\"]')]"
        ".some(e => e.innerText.includes('tokens/s'))",
        timeout=60_000,
    )
    answer = bot_texts(page)[-1]
    assert "Paris" in answer
    assert "first token" in answer and "CPU" in answer
    assert page.input_value("#prompt textarea") == ""  # the box is ready for the next message
    lengths = sorted(set(page.evaluate("window.__seen")))
    assert len([n for n in lengths if 0 < n < len(answer)]) >= 3, lengths  # words arrived before the end


def test_stop_button_stops_a_long_answer(page):
    page.fill("#prompt textarea", "Write a very long story about a dragon who learns to fly.")
    page.click("#send")
    page.wait_for_function(
        "() => { const b = [...document.querySelectorAll('#chatbot [data-testid=\"bot\"]')];"
        " return b.length >= 2 && b[b.length-1].innerText.split(' ').length > 5; }",
        timeout=60_000,
    )
    page.click("#stop")
    page.wait_for_function(
        "() => { const b = [...document.querySelectorAll('#chatbot [data-testid=\"bot\"]')];"
        " return b[b.length-1].innerText.includes('stopped'); }",
        timeout=30_000,
    )
    assert "stopped" in bot_texts(page)[-1]


def test_the_this_pc_tab_shows_the_probe(page):
    page.get_by_role("tab", name="This PC").click()
    page.wait_for_selector("#machine")
    text = page.locator("#machine").inner_text() + page.locator("#devices").inner_text()
    assert "CPU" in text and "Memory" in text
    assert "DirectX 12 needs Windows" in text
