"""The page in a real browser (Debian's Chromium, driven by Playwright) on the real app and the embedded model, one
person at a time: stream, stop, regenerate, edit, undo, New chat, reload, export, the machine tabs, a phone, no
internet, switching. Two people at once and the queue: tests/e2e/test_browser_people.py.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.browser_page import (
    BOT,
    FRANCE,
    JAPAN,
    LAST_BOT,
    LONG,
    NEEDS_CHROMIUM,
    WATCH_BOT_TEXT,
    shot,
)

pytestmark = NEEDS_CHROMIUM


# -- one person chatting ---------------------------------------------------------------------------------
def test_an_answer_grows_across_snapshots_and_its_figures_line_appears(person):
    me = person()
    assert me.page.locator("#stop").is_disabled()  # nothing runs: nothing to stop
    me.page.evaluate(WATCH_BOT_TEXT)
    me.ask(FRANCE)
    answer = me.wait_answers(1)
    assert "Paris" in answer
    for part in ("CPU", "OpenVINO GenAI", "SmolLM2-135M", "first token", "tokens/s", "tokens", "ended: "):
        assert part in answer
    assert me.page.input_value("#prompt textarea") == ""  # the box is ready for the next message
    lengths = sorted(set(me.page.evaluate("window.__seen")))
    assert len([n for n in lengths if 0 < n < len(answer)]) >= 3, lengths  # words arrived before the end
    assert me.page.locator("#stop").is_disabled() and me.page.locator("#send").is_enabled()
    me.settings(max_tokens=96)
    me.ask("Write a Python function that reverses a string.", enter=True)
    me.wait_answers(2)
    if me.page.locator("#chatbot pre code").count():  # the model wrote a code block: highlighted, with a copy button
        assert me.page.locator("#chatbot .code_wrap button.copy_code_button").count() >= 1
        assert me.page.locator("#chatbot pre code .token").count() >= 1
    me.page.get_by_text("Speed this session").click()
    me.page.wait_for_selector("#speed .sparks[data-answers='2']")
    shot(me.page, "chat.png", full_page=True)


def test_stop_halts_growth_and_the_next_question_works(person):
    me = person()
    me.ask(LONG)
    me.wait_words(8)
    assert me.page.locator("#stop").is_enabled() and me.page.locator("#send").is_disabled()
    me.page.click("#stop")
    me.page.wait_for_function(f"() => ({LAST_BOT})().includes('stopped')", timeout=30_000)
    halted = me.last()
    time.sleep(1.5)
    assert me.last() == halted, "the answer kept growing after Stop"
    assert len(halted.split()) < 400
    assert me.page.locator("#stop").is_disabled()
    me.ask(FRANCE)
    assert "Paris" in me.wait_answers(2)


def test_regenerate_replaces_the_answer(person):
    me = person()
    me.settings(temperature=1.0)  # sampled: every answer has its own seed, shown in its figures
    me.ask("Write a haiku about the sea.")
    first = me.wait_answers(1)
    assert "seed " in first
    me.page.get_by_role("button", name="Retry").click()
    me.page.wait_for_function(f"old => {{ const t = ({LAST_BOT})(); return t.includes('tokens/s') && t !== old; }}",
                              arg=first, timeout=120_000)
    second = me.last()
    assert me.users() == ["Write a haiku about the sea."] and len(me.bots()) == 1  # replaced, not added
    assert second.split("seed ")[1].split()[0] != first.split("seed ")[1].split()[0]


def test_editing_a_user_message_replaces_everything_after_it_and_undo_gives_it_back(person):
    me = person()
    me.ask(FRANCE)
    me.wait_answers(1)
    me.ask(JAPAN)
    me.wait_answers(2)
    me.page.get_by_role("button", name="Edit").first.click()
    me.page.locator("#chatbot textarea").first.fill("What is the capital of Italy?")
    me.page.get_by_role("button", name="Submit").click()
    me.page.wait_for_function("() => { const b = [...document.querySelectorAll(\"#chatbot [data-testid='bot']\")];"
                              " return b.length === 1 && b[0].innerText.includes('tokens/s'); }", timeout=120_000)
    assert me.users() == ["What is the capital of Italy?"]
    answer = me.last()
    assert "Rome" in answer and "Paris" not in answer and "Tokyo" not in answer
    me.page.get_by_role("button", name="Undo").click()
    me.page.wait_for_function("() => !document.querySelector(\"#chatbot [data-testid='user']\")", timeout=30_000)
    assert me.page.input_value("#prompt textarea") == "What is the capital of Italy?"  # back in the box


def test_enter_twice_quickly_yields_one_answer_at_a_time(person):
    me = person()
    me.page.fill("#prompt textarea", FRANCE)
    me.page.press("#prompt textarea", "Enter")
    me.page.press("#prompt textarea", "Enter")
    me.page.click("#send")
    me.wait_answers(1)
    time.sleep(2)
    assert me.users() == [FRANCE] and len(me.bots()) == 1


def test_new_chat_stops_the_running_answer_and_keeps_the_old_chat_among_past_chats(person):
    me = person()
    me.ask(LONG)
    me.wait_words(8)
    me.page.click("#new-chat")
    me.page.wait_for_function("() => !document.querySelector(\"#chatbot [data-testid='bot']\")", timeout=30_000)
    time.sleep(1.5)
    assert me.bots() == [] and me.page.locator("#stop").is_disabled()  # no late words from the old answer
    me.ask(FRANCE)
    assert "Paris" in me.wait_answers(1)
    me.page.get_by_text("Past chats").click()
    story = me.page.locator("#past label", has_text="Write a very long story")
    story.click()
    me.page.wait_for_function(f"() => ({LAST_BOT})().includes('stopped')", timeout=30_000)
    assert me.users() == [LONG]


def test_a_reload_keeps_the_conversation_even_in_the_middle_of_an_answer(person):
    me = person()
    me.ask(FRANCE)
    me.wait_answers(1)
    me.ask(LONG)
    me.wait_words(30)
    time.sleep(1.2)  # the browser's copy follows the answer about every second
    me.page.reload()
    me.open()
    assert me.users() == [FRANCE, LONG]
    assert "Paris" in me.bots()[0] and len(me.bots()[1].split()) >= 20  # the part answered before the reload
    assert "cut off: the page was reloaded" in me.bots()[1]
    me.ask(JAPAN)
    me.page.wait_for_function(f"() => document.querySelectorAll(\"{BOT}\").length === 3 && "
                              f"({LAST_BOT})().includes('tokens/s')", timeout=120_000)
    assert "Tokyo" in me.last()
    me.page.reload()
    me.open()
    assert me.users() == [FRANCE, LONG, JAPAN]


def test_a_chat_exports_as_markdown_and_json(person):
    me = person()
    me.ask(FRANCE)
    me.wait_answers(1)
    me.page.get_by_text("Export this chat").click()
    with me.page.expect_download() as md:
        me.page.click("#export-md")
    text = Path(md.value.path()).read_text(encoding="utf-8")
    assert text.startswith(f"# {FRANCE}") and "Paris" in text and md.value.suggested_filename.endswith(".md")
    with me.page.expect_download() as js:
        me.page.click("#export-json")
    assert '"role": "assistant"' in Path(js.value.path()).read_text(encoding="utf-8")


def test_an_example_prompt_asks_and_settings_reset_to_the_models_defaults(person):
    me = person()
    me.page.get_by_text(FRANCE).first.click()  # an example on the empty chat
    assert "Paris" in me.wait_answers(1)
    me.settings(temperature=0.9, top_p=0.5)
    me.page.click("#reset")
    me.page.wait_for_function("() => document.querySelector('#temperature input[type=number]').value === '0' && "
                              "document.querySelector('#top-p input[type=number]').value === '1'")
    assert me.page.input_value("#seed input") == "-1" and me.page.input_value("#max-tokens input[type=number]") \
        == "512"


# -- what runs where, and why ----------------------------------------------------------------------------
def test_the_this_pc_tab_shows_a_card_per_device_with_the_running_one_marked(person):
    me = person()
    me.page.get_by_role("tab", name="This PC").click()
    me.page.wait_for_selector("#devices .dev-card")
    text = me.page.locator("#machine").inner_text()
    assert "CPU" in text and "Memory" in text and "Probe took" in text
    cards = me.page.locator("#devices .dev-card")
    assert cards.count() >= 3
    assert "DirectX 12 needs Windows" in me.page.locator("#devices").inner_text()
    running = me.page.locator("#devices .dev-card.running")
    assert running.count() == 1 and "CPU" in running.inner_text() and "running the model" in running.inner_text()
    shot(me.page, "this-pc.png", full_page=True)


def test_the_why_this_model_table_lists_the_running_model_first_and_folds_the_rejections(person):
    me = person()
    me.page.get_by_role("tab", name="Why this model").click()
    me.page.wait_for_selector("#explanation .why-table")
    first = me.page.locator("#explanation .why-table tbody tr").first.inner_text()
    running = me.page.locator("#running").inner_text()
    assert "SmolLM2-135M" in first and "SmolLM2-135M" in running and "OpenVINO GenAI" in first
    assert "GB of RAM" in first and "available" in first
    folded = me.page.locator("#explanation details.rej")
    assert folded.count() >= 2 and not folded.first.evaluate("d => d.open")
    summary = folded.first.locator("summary").inner_text()
    assert int(summary.split(" ")[0]) >= 2  # "11 × not cached, and the app is offline"
    folded.first.locator("summary").click()
    assert folded.first.evaluate("d => d.open") and folded.first.locator("li").count() >= 2
    folded.first.locator("summary").click()
    shot(me.page, "why-this-model.png", full_page=True)


# -- a phone, and no internet ----------------------------------------------------------------------------
def test_on_a_phone_the_box_is_on_screen_without_scrolling_and_the_notice_is_one_line(person):
    me = person(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, device_scale_factor=2)
    box = me.page.locator("#prompt textarea").bounding_box()
    assert me.page.evaluate("window.scrollY") == 0
    assert box["y"] >= 0 and box["y"] + box["height"] <= 844 and box["width"] >= 150
    chat = me.page.locator("#chatbot").bounding_box()
    assert chat["height"] >= 844 * 0.5  # the chat takes the screen
    line = me.page.locator("#notice .notice-line")
    assert line.is_visible() and line.bounding_box()["height"] < 40
    assert not me.page.locator("#notice .notice-body").is_visible()
    line.tap()
    assert me.page.locator("#notice .notice-body").is_visible()  # opens on tap
    line.tap()
    me.ask(FRANCE)
    assert "Paris" in me.wait_answers(1)
    box = me.page.locator("#prompt textarea").bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= 844  # still on screen with an answer above it
    shot(me.page, "phone.png")


def test_nothing_is_fetched_from_the_internet(person):
    me = person()
    me.ask(FRANCE)
    me.wait_answers(1)
    for tab in ("This PC", "Why this model", "Chat"):
        me.page.get_by_role("tab", name=tab).click()
    time.sleep(0.5)
    here = urlsplit(me.url).netloc
    foreign = [u for u in me.requests if not u.startswith("data:") and urlsplit(u).netloc != here]
    assert me.requests and not foreign, foreign


# -- switching (last: it reloads the model everyone uses) -----------------------------------------------
def test_switching_keeps_the_chat_says_what_it_does_meanwhile_and_what_failed(person):
    me = person()
    me.ask(FRANCE)
    me.wait_answers(1)
    me.page.get_by_role("tab", name="Why this model").click()
    me.page.locator("#device input").click()
    me.page.get_by_role("option", name="npu", exact=True).click()
    me.page.click("#switch")
    me.page.wait_for_function("() => document.querySelector('#notice').innerText.includes('The switch failed')",
                              timeout=120_000)
    failed = me.page.locator("#notice").inner_text()
    assert "no Intel NPU found" in failed and "Still running SmolLM2-135M" in failed  # what failed, what runs
    me.page.locator("#device input").click()
    me.page.get_by_role("option", name="cpu", exact=True).click()
    me.page.get_by_text("fastest", exact=True).click()
    me.page.evaluate("""() => { window.__during = [];
      new MutationObserver(() => window.__during.push([document.querySelector('#notice').innerText,
                                                       document.querySelector('#send').disabled]))
        .observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true}); }""")
    me.page.click("#switch")
    me.page.wait_for_function("() => window.__during.some(([text, off]) => text.includes('Switching to') && off)",
                              timeout=60_000)  # says what it is doing, and this tab does not send meanwhile
    me.page.wait_for_function("() => !document.querySelector('#send').disabled && "
                              "!document.querySelector('#notice').innerText.includes('Switching to')",
                              timeout=180_000)
    assert "on CPU" in me.page.locator("#running").inner_text()
    assert "speed first" in me.page.locator("#explanation").inner_text()
    me.page.get_by_role("tab", name="Chat").click()
    assert me.users() == [FRANCE]  # the chat was kept
    me.ask(JAPAN)
    assert "Tokyo" in me.wait_answers(2)
