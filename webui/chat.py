"""Page logic, independent of Gradio: turns, the figures line, and who may stop what.

The conversation the model sees is kept apart from what the page shows: the page adds a
figures line under each answer, the model never reads it.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from models.engines import Engine, Reply, Sampling
from models.errors import AppError

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant. Answer briefly and accurately."


@dataclass
class Turn:
    role: str  # "user" | "assistant"
    content: str
    figures: str = ""  # shown under an answer, never sent to the model


@dataclass
class Conversation:
    turns: list[Turn] = field(default_factory=list)
    # who may stop this chat's answer: a secret made on the server at the first question and kept in the
    # page's server-side state, so it cannot be forged the way a client-chosen session id can
    owner: str = ""

    def owned(self) -> Conversation:
        return self if self.owner else Conversation(list(self.turns), secrets.token_urlsafe(16))

    def engine_messages(self, system_prompt: str) -> list[dict]:
        head = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
        return head + [{"role": t.role, "content": t.content} for t in self.turns]

    def display(self) -> list[dict]:
        """Gradio Chatbot messages: the answer, then its figures in small print."""
        out = []
        for t in self.turns:
            content = t.content if not t.figures else f"{t.content}\n\n<sub>{t.figures}</sub>"
            out.append({"role": t.role, "content": content})
        return out


@dataclass(frozen=True)
class Update:
    conversation: Conversation
    error: str = ""  # shown as a warning
    done: bool = False
    give_back: str = ""  # the message goes back into the box: nothing of it was answered
    position: int = 0  # > 0 while waiting: how many answers come before this one


@dataclass(frozen=True)
class Event:
    """What a caller of `ask` sees: its place in the queue, then text, then the finished reply."""

    position: int = 0  # > 0: still waiting, this many answers come first
    delta: str = ""
    reply: Reply | None = None  # on the last event


class QueueFull(AppError, RuntimeError):
    """Every place in the wait queue is taken: ask again in a little while."""

    def __init__(self, message: str, retry_after_s: int = 10):
        super().__init__(message)
        self.retry_after_s = retry_after_s


_SWITCH = object()  # holds the turn while the engine is replaced


class ChatService:
    """Runs chats on one engine for everyone: the page and the API share its queue. Stop only stops the
    caller's own generation.

    Concurrency, all under `_cond`: `_holders` are whoever has one of the engine's `slots` now (answer
    owners; the engine's own `max_parallel`: several on a continuous-batching engine, else one), or the
    switch, which takes the engine alone; `_waiting` are the tickets in line, first come first served, at
    most `max_queue` of them. A waiter that goes away (a closed tab, a dropped API client) leaves the line at
    once. `swap` and `release` wait until no answer runs, then hold the engine while it changes.
    `cancel(owner)` stops that owner's reply only (`_replies`), in the engine.
    """

    def __init__(self, engine: Engine | None, max_queue: int = 16):
        self.engine = engine
        self.max_queue = max_queue
        self._cond = threading.Condition()
        self._holders: list[object] = []
        self._replies: dict[str, Reply] = {}
        self._waiting: list[object] = []

    @property
    def slots(self) -> int:
        return max(1, getattr(self.engine, "max_parallel", 1) or 1)

    def _free(self, holder: object) -> bool:
        if _SWITCH in self._holders:
            return False
        if holder is _SWITCH:
            return not self._holders
        return len(self._holders) < self.slots

    # -- the turn ---------------------------------------------------------------------------
    def _wait_turn(self, holder: object) -> Iterator[int]:
        """Yields this caller's position while it waits; returns once it holds the turn."""
        ticket = object()
        with self._cond:
            if self._free(holder) and not self._waiting:
                self._holders.append(holder)
                return
            if len(self._waiting) >= self.max_queue and holder is not _SWITCH:
                raise QueueFull(f"All {self.max_queue} places in the queue are taken: ask again in a little while.")
            self._waiting.append(ticket)
        try:
            while True:
                with self._cond:
                    if self._waiting[0] is ticket and self._free(holder):
                        self._waiting.pop(0)
                        self._holders.append(holder)
                        return
                    position = self._waiting.index(ticket) + 1
                yield position
                with self._cond:
                    self._cond.wait(0.25)
        finally:
            with self._cond:
                if ticket in self._waiting:  # left the line (closed, error) before its turn
                    self._waiting.remove(ticket)
                    self._cond.notify_all()

    def _end_turn(self, holder: object) -> None:
        with self._cond:
            if holder in self._holders:
                self._holders.remove(holder)
                self._cond.notify_all()

    def queue_length(self) -> int:
        with self._cond:
            return len(self._waiting)

    def _exclusive(self) -> None:
        for _ in self._wait_turn(_SWITCH):
            pass

    def swap(self, engine: Engine) -> Engine | None:
        """Serve the next answers from another engine, after the running answer ends; returns the old one."""
        self._exclusive()
        try:
            old, self.engine = self.engine, engine
        finally:
            self._end_turn(_SWITCH)
        return old

    def release(self) -> Engine | None:
        """Close the running engine (after its answer ends) to free its memory before another loads.
        Until `swap` gives a new one, questions get a clear "being switched" message."""
        self._exclusive()
        try:
            old, self.engine = self.engine, None
        finally:
            self._end_turn(_SWITCH)
        if old is not None:
            old.close()
        return old

    def cancel(self, owner: str) -> bool:
        with self._cond:
            reply = self._replies.get(owner)
        if reply is None:
            return False
        reply.cancel()
        return True

    # -- answering --------------------------------------------------------------------------
    def ask(self, owner: str, messages: list[dict], sampling: Sampling) -> Iterator[Event]:
        """The API's way in: queue, then stream one answer to `messages`. Closing the iterator (a client
        that went away) leaves the queue or stops the generation in the engine."""
        waiting = self._wait_turn(owner)
        try:
            for position in waiting:
                yield Event(position=position)
        finally:
            waiting.close()  # a caller gone while waiting leaves the line now, not when collected
        try:
            if self.engine is None:
                raise AppError("The model is being switched: ask again in a moment.")
            reply = self.engine.stream(messages, sampling)
            with self._cond:
                self._replies[owner] = reply
            try:
                for delta in reply:
                    yield Event(delta=delta)
            finally:
                with self._cond:
                    self._replies.pop(owner, None)
                reply.close()
            yield Event(reply=reply)
        finally:
            self._end_turn(owner)

    def respond(self, owner: str, conversation: Conversation, message: str, sampling: Sampling,
                system_prompt: str = DEFAULT_SYSTEM_PROMPT) -> Iterator[Update]:
        """The page's way in: stream one answer; each Update holds the whole conversation as it stands."""
        message = message.strip()
        if not message:
            yield Update(conversation, error="Type a message first.", done=True)
            return
        draft = Conversation(conversation.turns + [Turn("user", message), Turn("assistant", "")], conversation.owner)
        messages = draft.engine_messages(system_prompt)[:-1]
        answer = ""
        try:
            for event in self.ask(owner, messages, sampling):
                if event.position:
                    yield Update(conversation, position=event.position)
                elif event.reply is not None:
                    draft.turns[-1] = Turn("assistant", answer, figures=figures_line(event.reply))
                    yield Update(draft, done=True)
                else:
                    answer += event.delta
                    draft.turns[-1] = Turn("assistant", answer)
                    yield Update(Conversation(list(draft.turns), draft.owner))  # a snapshot per update
        except AppError as err:
            if not answer:  # nothing was answered: the chat stays as it was, the message goes back
                yield Update(conversation, error=str(err), done=True, give_back=message)
                return
            # the partial answer stays, marked, and the next question works as usual
            draft.turns[-1] = Turn("assistant", answer, figures=f"cut off: {err}")
            yield Update(draft, error=str(err), done=True)


def figures_line(reply) -> str:
    stats = reply.stats
    parts = []
    if stats is not None:
        parts.append(stats.line())
        if stats.finish_reason == "cancelled":
            parts.append("stopped")
        elif stats.finish_reason == "length":
            parts.append("cut at the length limit")
    if reply.seed is not None:
        parts.append(f"seed {reply.seed}")
    parts.extend(reply.notices)
    return " · ".join(parts)
