"""Page logic (webui/chat.py) with a fake engine that records its calls: no model needed here."""

from __future__ import annotations

from app.serving import ServingQueue
from models.engines.base import Reply, ReplyStats
from models.engines.sampling import Sampling
from models.errors import PromptTooLong
from tests.support.recording_engine import RecordingEngine
from webui.chat import Conversation, Turn, respond


def test_the_model_gets_clean_turns_and_the_page_shows_figures():
    engine = RecordingEngine()
    service = ServingQueue(engine)
    updates = list(respond(service, "me", Conversation(), "Hi!", Sampling(), system_prompt="Be kind."))
    assert [u.conversation.turns[-1].content for u in updates[:-1]] == ["Hello", "Hello there", "Hello there."]
    final = updates[-1].conversation
    assert "first token 0.05 s" in final.turns[-1].figures and "20.0 tokens/s" in final.turns[-1].figures
    assert final.display()[-1]["content"].endswith("</sub>")
    # second turn: the figures line never reaches the model
    list(respond(service, "me", final, "And now?", Sampling(), system_prompt="Be kind."))
    sent = engine.calls[-1]
    assert sent == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Hi!"},
        {"role": "assistant", "content": "Hello there."},
        {"role": "user", "content": "And now?"},
    ]


def test_an_empty_message_is_refused_without_calling_the_engine():
    engine = RecordingEngine()
    (update,) = respond(ServingQueue(engine), "me", Conversation(), "   ", Sampling())
    assert update.error and not engine.calls


def test_an_engine_error_keeps_the_conversation_as_it_was():
    before = Conversation([Turn("user", "a"), Turn("assistant", "b")])
    engine = RecordingEngine(error=PromptTooLong("too long: shorten it"))
    updates = list(respond(ServingQueue(engine), "me", before, "long text", Sampling()))
    assert updates[-1].error == "too long: shorten it"
    assert updates[-1].conversation.turns == before.turns


def test_stop_only_stops_the_callers_own_generation():
    engine = RecordingEngine(words=tuple(f"w{i} " for i in range(50)))
    service = ServingQueue(engine)
    stream = respond(service, "alice", Conversation(), "go", Sampling())
    next(stream)
    assert service.cancel("bob") is False  # somebody else's Stop does nothing
    assert service.cancel("alice") is True
    rest = list(stream)
    assert "stopped" in rest[-1].conversation.turns[-1].figures
    assert len(rest[-1].conversation.turns[-1].content.split()) < 50


class FailingMidway(RecordingEngine):
    """Streams two words, then fails the way an engine does (the seam turns it into EngineError)."""

    def _generate(self, messages, sampling, reply: Reply):
        self.calls.append(messages)
        yield "Half "
        yield "an answer"
        if len(self.calls) == 1:
            raise RuntimeError("ZE_RESULT_ERROR_DEVICE_LOST")
        reply.stats = ReplyStats("CPU", "fake", 0.05, 20.0, 7, 2, "stop", 0.2)


def test_an_engine_failing_mid_answer_keeps_the_partial_answer_marked_and_the_next_question_works():
    engine = FailingMidway()
    service = ServingQueue(engine)
    updates = list(respond(service, "me", Conversation(), "Tell me", Sampling()))
    final = updates[-1]
    assert final.error.startswith("fake failed while answering on CPU: ZE_RESULT_ERROR_DEVICE_LOST")
    assert final.give_back == ""  # the question was answered in part: it is not handed back
    last = final.conversation.turns[-1]
    assert last.content == "Half an answer" and last.figures.startswith("cut off:")
    again = list(respond(service, "me", final.conversation, "Again?", Sampling()))
    assert not again[-1].error and again[-1].conversation.turns[-1].content == "Half an answer"


def test_while_the_model_is_switched_a_question_is_given_back_with_a_reason():
    engine = RecordingEngine()
    service = ServingQueue(engine)
    assert service.release() is engine
    (update,) = respond(service, "me", Conversation(), "Hello?", Sampling())
    assert "being switched" in update.error and update.give_back == "Hello?" and not engine.calls
    assert service.cancel("me") is False


class Paused(RecordingEngine):
    """Streams one word, then waits until released: an answer that holds the engine."""

    def __init__(self):
        super().__init__()
        import threading

        self.go = threading.Event()

    def _generate(self, messages, sampling, reply: Reply):
        self.calls.append(messages)
        yield "first "
        self.go.wait(10)
        yield "done"
        reply.stats = ReplyStats("CPU", "fake", 0.05, 20.0, 7, 2, "stop", 0.2)


def test_waiting_callers_see_their_place_a_full_queue_is_refused_and_a_leaver_frees_its_place():
    from app.serving import QueueFull

    engine = Paused()
    service = ServingQueue(engine, max_queue=2)
    running = service.ask("a", [{"role": "user", "content": "q"}], Sampling())
    assert next(running).delta == "first "  # "a" holds the engine
    b = service.ask("b", [{"role": "user", "content": "q"}], Sampling())
    c = service.ask("c", [{"role": "user", "content": "q"}], Sampling())
    assert next(b).position == 1 and next(c).position == 2
    d = service.ask("d", [{"role": "user", "content": "q"}], Sampling())
    try:
        next(d)
        raise AssertionError("a third waiter should be refused: the queue holds two")
    except QueueFull as err:
        assert "2 places" in str(err) and err.retry_after_s > 0
    b.close()  # "b" went away while waiting: its place is free at once
    assert service.queue_length() == 1 and next(c).position == 1
    engine.go.set()
    assert [e.delta for e in running if e.delta] == ["done"]
    assert [e.delta for e in c if e.delta] == ["first ", "done"]  # "c" is served next


def test_the_figures_line_names_device_engine_model_speed_tokens_and_why_it_ended():
    engine = RecordingEngine()
    *_, last = respond(ServingQueue(engine), "me", Conversation(), "Hi!", Sampling())
    answer = last.conversation.turns[-1]
    assert answer.figures.split(" · ")[:3] == ["CPU", "fake", "fake"]  # device, engine, model
    assert "7 tokens" not in answer.figures and "3 tokens" in answer.figures  # generated, not prompt tokens
    assert answer.figures.endswith("ended: the model finished")
    assert answer.speed == (0.05, 20.0)  # for the speed chart


def test_stop_while_waiting_leaves_the_queue_and_gives_the_question_back():
    engine = Paused()
    service = ServingQueue(engine)
    running = service.ask("a", [{"role": "user", "content": "q"}], Sampling())
    assert next(running).delta == "first "
    waiting = respond(service, "b", Conversation(), "my question", Sampling())
    assert next(waiting).position == 1 and service.busy("b")
    assert service.cancel("b") is True
    (last,) = list(waiting)
    assert last.give_back == "my question" and not last.error and last.conversation.turns == []
    assert service.queue_length() == 0 and not service.busy("b")
    engine.go.set()
    list(running)
    # a later question of the same owner is not affected by the earlier Stop
    assert list(respond(service, "b", Conversation(), "again", Sampling()))[-1].conversation.turns[-1].content


class TwoAtOnce(RecordingEngine):
    """Runs two answers together; each one stops when its own reply is cancelled."""

    max_parallel = 2

    def _generate(self, messages, sampling, reply: Reply):
        import time

        sent = 0
        for w in self.words:
            if reply._cancel.is_set():
                break
            sent += 1
            time.sleep(0.002)
            yield w
        reply.stats = ReplyStats("CPU", "fake", 0.05, 20.0, 7, sent,
                                 "cancelled" if reply._cancel.is_set() else "stop", 0.2)


def test_a_tab_whose_old_answer_is_still_ending_keeps_stop_for_the_new_one():
    """Regenerate starts the new answer while the old one winds down: the old one's end must not unregister the
    new one, and Stop reaches every answer of that owner."""
    service = ServingQueue(TwoAtOnce(words=tuple(f"w{i} " for i in range(500))))
    old = service.ask("me", [{"role": "user", "content": "q"}], Sampling())
    new = respond(service, "me", Conversation(), "go", Sampling())
    assert next(old).delta and next(new).conversation.turns[-1].content
    old.close()  # the old one ends first
    assert service.cancel("me") is True  # the new one is still reachable
    final = list(new)[-1].conversation.turns[-1]
    assert "stopped" in final.figures and len(final.content.split()) < 500
    assert service.cancel("me") is False and not service.busy("me")


def test_while_a_switch_loads_the_next_model_questions_wait_with_what_it_does_then_get_answered():
    import threading

    engine = RecordingEngine()
    service = ServingQueue(engine)
    service.begin_switch("Phi-3 on NPU: compiling")
    service.release()
    updates = respond(service, "me", Conversation(), "Hello?", Sampling())
    first = next(updates)
    assert first.position and first.note == "Phi-3 on NPU: compiling"
    from webui.chat import waiting_line

    assert waiting_line(first) == "Waiting: the model is being switched (Phi-3 on NPU: compiling)..."
    new = RecordingEngine(words=("Hi.",))
    threading.Timer(0.3, lambda: (service.swap(new), service.end_switch())).start()
    last = list(updates)[-1]
    assert last.conversation.turns[-1].content == "Hi." and not last.error and new.calls


def test_model_defaults_come_from_the_engine_when_it_has_them():
    from webui.chat import model_defaults

    engine = RecordingEngine()
    assert model_defaults(engine) == Sampling() and model_defaults(None) == Sampling()
    engine.defaults = Sampling(temperature=0.7, top_p=0.9, max_new_tokens=256)
    assert model_defaults(engine).top_p == 0.9


def test_an_answer_cut_inside_a_code_block_is_closed_before_its_figures():
    shown = Conversation([Turn("assistant", "Here:\n```python\ndef f():\n    return", "CPU · stopped")]).display()
    assert shown[0]["content"] == "Here:\n```python\ndef f():\n    return\n```\n\n<sub>CPU · stopped</sub>"
    whole = Conversation([Turn("assistant", "```\nx\n```", "CPU")]).display()
    assert whole[0]["content"] == "```\nx\n```\n\n<sub>CPU</sub>"


def test_with_no_queue_a_question_that_finds_every_slot_busy_is_told_so_not_that_0_places_are_taken():
    from app.serving import QueueFull

    engine = Paused()
    service = ServingQueue(engine, max_queue=0)
    running = service.ask("a", [{"role": "user", "content": "q"}], Sampling())
    assert next(running).delta == "first "
    refused = service.ask("b", [{"role": "user", "content": "q"}], Sampling())
    try:
        next(refused)
        raise AssertionError("with --max-queue 0 a second question must be refused at once")
    except QueueFull as err:
        assert "keeps no queue (--max-queue 0)" in str(err) and "0 places" not in str(err)
    engine.go.set()
    assert [e.delta for e in running if e.delta] == ["done"]
