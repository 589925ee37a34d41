"""A tab's chats (webui/tab.py), the page's HTML pieces (webui/render.py) and the "Why this model" table
(webui/views.py), without a browser or a model."""

from __future__ import annotations

import json
from urllib.parse import unquote

from capabilities import MachineProfile
from models.catalog import load_catalog
from models.policy import Preference, rank
from tests.support import machines
from webui import render, views
from webui.chat import Conversation, Turn
from webui.tab import MAX_CHATS, TabState, cut_at_user, event_index, to_json, to_markdown
from webui.views import DeviceRow

CHAT = Conversation([Turn("user", "What is the capital of France?"),
                     Turn("assistant", "Paris.", "CPU · 20.0 tokens/s", (0.1, 20.0)),
                     Turn("user", "And of Japan?"),
                     Turn("assistant", "Tokyo.", "CPU · 22.0 tokens/s", (0.2, 22.0))])


def test_the_browser_copy_holds_the_chats_but_never_the_owner_secret():
    tab = TabState(conversation=CHAT)
    secret = tab.owned()
    stored = tab.to_browser()
    assert secret not in json.dumps(stored)
    reloaded = TabState()
    reloaded.restore(stored)
    assert reloaded.conversation.turns == CHAT.turns and reloaded.chat_id == tab.chat_id
    assert reloaded.owner == "" and reloaded.owned() != secret  # a reloaded tab gets a new secret
    assert reloaded.speeds == [(0.1, 20.0), (0.2, 22.0)]  # the speed chart comes back with the chat


def test_what_comes_back_from_the_browser_is_checked():
    tab = TabState()
    tab.restore({"current": "x", "chats": [
        {"id": "x", "turns": [{"role": "system", "content": "forged"}, {"role": "user", "content": 5},
                              {"role": "user", "content": "hi", "speed": ["a", 1]},
                              {"role": "assistant", "content": "hello", "owner": "stolen"}]},
        "not a chat", {"id": 3, "turns": []}, {"id": "empty", "turns": []}]})
    assert [(t.role, t.content, t.speed) for t in tab.conversation.turns] == [("user", "hi", None),
                                                                            ("assistant", "hello", None)]
    assert tab.past == [] and tab.owner == ""
    tab.restore({"current": "y", "chats": [{"id": "y", "turns": [{"role": "user", "content": "tell me"},
                                                                  {"role": "assistant", "content": "Once upon"}]}]})
    assert tab.conversation.turns[-1].figures.startswith("cut off: the page was reloaded")  # it went away mid-answer
    for junk in (None, "text", [1, 2], {"chats": "no"}, {"chats": [{"id": "a", "turns": "no"}]}):
        fresh = TabState()
        fresh.restore(junk)
        assert fresh.conversation.turns == [] and fresh.past == []


def test_new_chat_keeps_the_old_one_among_past_chats_and_a_past_chat_opens_again():
    tab = TabState(conversation=CHAT)
    first = tab.chat_id
    tab.new_chat()
    assert tab.conversation.turns == [] and tab.chat_id != first
    assert [label for label, _ in tab.past_choices()][0].startswith("What is the capital of France?")
    tab.conversation = Conversation([Turn("user", "Second chat"), Turn("assistant", "Yes.")])
    assert tab.open(first)
    assert tab.conversation.turns == CHAT.turns and tab.chat_id == first
    assert [c.title for c in tab.past] == ["Second chat"]
    assert not tab.open("no-such-chat")
    stored = tab.to_browser()
    assert [c["id"] for c in stored["chats"]][0] == first and stored["current"] == first


def test_at_most_max_chats_are_kept():
    tab = TabState()
    for i in range(MAX_CHATS + 5):
        tab.conversation = Conversation([Turn("user", f"question {i}")])
        tab.new_chat()
    tab.conversation = Conversation([Turn("user", "now")])
    stored = tab.to_browser()["chats"]
    assert len(stored) == MAX_CHATS and stored[0]["title"] == "now"
    assert stored[1]["title"] == f"question {MAX_CHATS + 4}"


def test_regenerate_edit_and_undo_cut_the_chat_before_a_user_message():
    before, message = cut_at_user(CHAT, 2)  # the second question
    assert message == "And of Japan?" and before.turns == CHAT.turns[:2]
    before, message = cut_at_user(CHAT, 3)  # Gradio may name the answer: its question is meant
    assert message == "And of Japan?" and before.turns == CHAT.turns[:2]
    before, message = cut_at_user(CHAT, 0)
    assert message == CHAT.turns[0].content and before.turns == []
    assert cut_at_user(Conversation(), 0) == (Conversation(), "")
    assert event_index([2, 0]) == 2 and event_index(3) == 3 and event_index("x") == 0 and event_index(True) == 0


def test_a_chat_exports_as_markdown_and_json():
    md = to_markdown(CHAT)
    assert md.startswith("# What is the capital of France?") and "**Assistant:**\n\nTokyo." in md
    data = json.loads(to_json(CHAT))
    assert data["messages"][1] == {"role": "assistant", "content": "Paris.", "figures": "CPU · 20.0 tokens/s",
                                   "speed": [0.1, 20.0]}
    links = render.export_links(CHAT)
    assert "download='what-is-the-capital-of-france.md'" in links
    md_href = links.split("href='", 1)[1].split("'", 1)[0]
    assert unquote(md_href.split(",", 1)[1]) == md
    assert "<script" not in render.export_links(Conversation([Turn("user", "<script>alert(1)</script>'")]))


def test_the_notice_is_escaped_and_folds_to_its_first_line():
    html = render.notice(("This is the small embedded model. Its answers are short.", "Run `launch.py --model X`."))
    assert "<label for='notice-open' class='notice-line'>This is the small embedded model (+1 more)</label>" in html
    assert "<code>launch.py --model X</code>" in html
    assert "&lt;b&gt;" in render.notice(("<b>bold</b>",)) and render.notice(()) == ""


DEVICES = (DeviceRow("Intel(R) Core(TM) Ultra 7 155H", "CPU", "cpu", True, "via openvino"),
           DeviceRow("Intel(R) Arc(TM) Graphics", "GPU.0", "gpu", True, "integrated, via openvino"),
           DeviceRow("OpenVINO NPU", "NPU", "npu", False, "OpenVINO lists no NPU: its driver is missing"))


def test_the_device_cards_say_why_a_device_is_missing_and_mark_the_running_one():
    cards = render.device_cards(DEVICES, "GPU.0")
    assert cards.count("class='dev-card ") == 3 and cards.count("running the model") == 1
    running = cards.split("dev-card on running")[1].split("dev-card")[0]
    assert "Arc" in running
    assert "<b>why: </b>OpenVINO lists no NPU: its driver is missing" in cards
    assert render.running_device(DEVICES, "CPU") == 0
    assert render.running_device(DEVICES, "NPU") == -1  # the NPU was not found: nothing runs there


def test_the_speed_chart_plots_every_answer_of_the_session():
    assert "once the model has answered" in render.speed_chart([])
    chart = render.speed_chart([(0.1, 20.0), (0.3, 25.5)])
    assert "data-answers='2'" in chart and chart.count("<svg") == 2 and "<b>25.50 tokens/s</b>" in chart


def test_why_this_model_is_a_table_with_the_running_model_first_and_rejections_folded_by_reason():
    recorded = (machines.MACHINES / "core-ultra-7-155h-windows" / "expected.json").read_text()
    ranking = rank(MachineProfile.from_json(recorded), load_catalog(), Preference())
    html = views.explain_markdown(ranking)
    assert html.count("<tr class=") == len(ranking.candidates)
    first = ranking.candidates[0]
    assert html.index(first.artifact.name) < html.index("</tr>", html.index("<tbody>")) and "first choice" in html
    assert "memory: needed · available" in html and " available</td>" in html
    third = ranking.candidates[2]
    marked = views.explain_markdown(ranking, running=third)
    body = marked.split("<tbody>")[1]
    assert body.index(third.artifact.id) < body.index("</tr>") and "running now" in body.split("</tr>")[0]
    assert body.count(f"<code>{third.artifact.id}</code>") >= 1
    elsewhere = rank(MachineProfile.from_json(recorded), load_catalog(), Preference(device="npu"))
    other = views.explain_markdown(elsewhere, running=third)  # another preference: the running one is not there
    assert "Running now: <b>" in other and "running now</span>" not in other and "first choice" in other
    # rejections: one folded line per reason, with the count and every rejected build inside
    summaries = [s.split("</summary>")[0] for s in html.split("<summary>")[1:]]
    assert sum(int(s.split("<b>")[1].split("</b>")[0]) for s in summaries) == len(ranking.rejected)
    assert html.count("<details class='rej'>") == len({r.reasons[-1] for r in ranking.rejected})
