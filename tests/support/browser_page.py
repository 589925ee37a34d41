"""The page in a real browser, shared by the browser tests: the real app on the embedded model (`serving`),
Debian's Chromium driven by Playwright (`chromium`), and a Person (one browser context: its own localStorage,
cookies and Gradio session; `people` opens them).

The screenshots the README shows are written to docs/screenshots/ by the browser tests.
"""

from __future__ import annotations

import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tools.live_app import start_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NEEDS_CHROMIUM = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="needs a Chromium (Debian: apt-get install chromium); CI installs it",
)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = ROOT / "docs" / "screenshots"
LONG = "Write a very long story about a dragon who learns to fly."
FRANCE, JAPAN = "What is the capital of France?", "What is the capital of Japan?"
BOT, USER = "#chatbot [data-testid='bot']", "#chatbot [data-testid='user']"
# how many answers carry their figures line (they are finished)
FINISHED = "n => [...document.querySelectorAll(\"#chatbot [data-testid='bot']\")]" \
           ".filter(e => e.innerText.includes('tokens/s')).length >= n"
LAST_BOT = "() => { const b = [...document.querySelectorAll(\"#chatbot [data-testid='bot']\")]; " \
           "return b.length ? b[b.length - 1].innerText : ''; }"
WATCH_BOT_TEXT = """() => {
  window.__seen = [];
  new MutationObserver(() => {
    const b = [...document.querySelectorAll('#chatbot [data-testid="bot"]')];
    if (b.length) window.__seen.push(b[b.length - 1].innerText.length);
  }).observe(document.querySelector('#chatbot'), {subtree: true, childList: true, characterData: true});
}"""


@contextmanager
def serving(home: Path, *args: str, env: dict | None = None):
    """The real app (launch.py) on the embedded model; it must end cleanly."""
    running = start_app("--offline", *args, home=home, env=env)
    try:
        yield running
    finally:
        assert running.stop() == 0
        assert "Traceback" not in "".join(running.lines)


@contextmanager
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield launched
        finally:
            launched.close()


class Person:
    """One browser context on the page: its own storage, cookie and Gradio session."""

    def __init__(self, browser, url: str, **context):
        self.context = browser.new_context(**({"viewport": {"width": 1200, "height": 900}} | context))
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.url = url
        self.open()

    def open(self) -> None:
        self.page.goto(self.url)
        self.page.wait_for_selector("#prompt textarea")
        self.page.wait_for_function("() => document.querySelector('#send') && !document.querySelector('#send')"
                                    ".disabled")
        time.sleep(0.5)  # the load event has restored what this browser kept

    def ask(self, text: str, enter: bool = False) -> None:
        self.page.fill("#prompt textarea", text)
        if enter:
            self.page.press("#prompt textarea", "Enter")
        else:
            self.page.click("#send")

    def wait_answers(self, n: int = 1, timeout: float = 120) -> str:
        self.page.wait_for_function(FINISHED, arg=n, timeout=timeout * 1000)
        return self.last()

    def wait_words(self, n: int, timeout: float = 60) -> None:
        self.page.wait_for_function(f"() => ({LAST_BOT})().split(' ').length > {n}", timeout=timeout * 1000)

    def last(self) -> str:
        return self.page.evaluate(LAST_BOT)

    def users(self) -> list[str]:
        return self.page.locator(USER).all_inner_texts()

    def bots(self) -> list[str]:
        return self.page.locator(BOT).all_inner_texts()

    def settings(self, **numbers: float) -> None:
        """Set sliders and numbers of the Settings accordion by element id (max_tokens=64 -> #max-tokens)."""
        if not self.page.locator("#system textarea").is_visible():
            self.page.get_by_text("Settings (this tab)").click()
        for name, value in numbers.items():
            box = self.page.locator(f"#{name.replace('_', '-')} input[type=number]")
            box.fill(str(value))
            box.press("Enter")
            box.blur()
        time.sleep(0.5)

    def close(self) -> None:
        self.context.close()


@contextmanager
def people(browser, url: str):
    """`open_one(**context)` opens one more Person; all are closed at the end."""
    made: list[Person] = []

    def open_one(**context) -> Person:
        made.append(Person(browser, url, **context))
        return made[-1]

    try:
        yield open_one
    finally:
        for p in made:
            p.close()


def log_in(page, url: str, user: str, password: str) -> None:
    """A LAN-mode page: Gradio's login form, then the chat."""
    page.goto(url)
    page.fill("input[type=password]", password)
    page.fill("input[type=text]", user)
    page.click("button:has-text('Login')")
    page.wait_for_selector("#prompt textarea", timeout=60_000)


def tab_names(page) -> list[str]:
    """The page's tabs a person sees, once the load event has shown or hidden the host's."""
    page.wait_for_function("() => document.querySelectorAll('button[role=tab]').length >= 1")
    time.sleep(2)  # the load event shows the host's tabs
    return page.locator("button[role=tab]").all_inner_texts()


def shot(page, name: str, **kwargs) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), **kwargs)


