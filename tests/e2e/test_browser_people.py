"""Two people on the page at once, each in their own browser context: separate chats, correct answers side by
side, Stop in one leaving the other running, and the shared queue's place shown while the engine is busy."""

from __future__ import annotations

import time

from tests.support.browser_page import FRANCE, JAPAN, LAST_BOT, LONG, NEEDS_CHROMIUM, people, serving

pytestmark = NEEDS_CHROMIUM


def test_two_browser_contexts_keep_separate_chats(person):
    alice, bob = person(), person()
    alice.ask(FRANCE)
    alice.wait_answers(1)
    bob.open()
    assert bob.users() == []
    bob.ask(JAPAN)
    bob.wait_answers(1)
    alice.page.reload()
    alice.open()
    assert alice.users() == [FRANCE] and bob.users() == [JAPAN]


def test_two_people_asking_at_the_same_time_get_their_own_correct_answers(person):
    alice, bob = person(), person()
    alice.page.fill("#prompt textarea", FRANCE)
    bob.page.fill("#prompt textarea", JAPAN)
    alice.page.click("#send")
    bob.page.click("#send")
    a, b = alice.wait_answers(1), bob.wait_answers(1)
    assert "Paris" in a and "Tokyo" not in a and "Japan" not in a
    assert "Tokyo" in b and "Paris" not in b and "France" not in b


def test_stop_in_one_session_leaves_the_other_running_to_completion(person):
    alice, bob = person(), person()
    alice.settings(max_tokens=2048)
    bob.settings(max_tokens=320)
    bob.ask(LONG)
    alice.ask(LONG)
    alice.wait_words(5)
    alice.page.click("#stop")
    alice.page.wait_for_function(f"() => ({LAST_BOT})().includes('stopped')", timeout=30_000)
    finished = bob.wait_answers(1)
    assert "stopped" not in finished and "ended: " in finished and len(finished.split()) > 100


def test_while_the_engine_is_busy_a_second_person_sees_their_place_then_their_answer(browser, embedded_gguf,
                                                                                     app_home):
    with serving(app_home, "--parallel", "1") as one, people(browser, one.url) as open_one:
        alice, bob = open_one(), open_one()
        alice.settings(max_tokens=2048)
        alice.ask(LONG + " Make it at least two thousand words long.")
        alice.wait_words(5)
        bob.ask(FRANCE)
        bob.page.wait_for_function(f"() => ({LAST_BOT})().includes('Waiting: 1 answer before yours...')",
                                   timeout=30_000)
        assert bob.page.locator("#send").is_disabled() and bob.page.locator("#stop").is_enabled()
        assert "tokens/s" not in alice.last()  # the one slot is still alice's
        time.sleep(1)
        assert "Waiting: 1 answer before yours..." in bob.last()  # still waiting, not answered around alice
        alice.page.click("#stop")
        assert "stopped" in alice.wait_answers(1)
        assert "Paris" in bob.wait_answers(1, timeout=180)

