"""Page logic, independent of Gradio: turns, the figures line, the shared queue and who may stop what.

The conversation the model sees is kept apart from what the page shows: the page adds a
figures line under each answer, the model never reads it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from models.engines import Engine, Reply, Sampling
from models.errors import AppError

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant. Answer briefly and accurately."
ENDED = {"stop": "ended: the model finished", "length": "ended: cut at the length limit", "cancelled": "stopped"}


@dataclass
class Turn:
    role: str  # "user" | "assistant"
    content: str
    figures: str = ""  # shown under an answer, never sent to the model
    speed: tuple[float, float] | None = None  # an answer's (time to first token in s, tokens/s), for the chart


@dataclass
class Conversation:
    turns: list[Turn] = field(default_factory=list)

    def engine_messages(self, system_prompt: str) -> list[dict]:
        head = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
        return head + [{"role": t.role, "content": t.content} for t in self.turns]

    def display(self) -> list[dict]:
        """Gradio Chatbot messages, one per turn: the answer, then its figures in small print."""
        out = []
        for t in self.turns:
            content = t.content
            if t.figures:
                # an answer cut inside a code block (Stop, the length limit) is closed first, or the figures
                # would show as code
                fences = sum(1 for line in content.splitlines() if line.lstrip().startswith(("```", "~~~")))
                content = content + "\n```" if fences % 2 else content
                content = f"{content}\n\n<sub>{t.figures}</sub>"
            out.append({"role": t.role, "content": content})
        return out


@dataclass(frozen=True)
class Update:
    conversation: Conversation
    error: str = ""  # shown as a warning
    done: bool = False
    give_back: str = ""  # the message goes back into the box: nothing of it was answered
    position: int = 0  # > 0 while waiting: how many answers come before this one
    note: str = ""  # while waiting for a model switch: what it is doing


@dataclass(frozen=True)
class Event:
    """What a caller of `ask` sees: its place in the queue, then text, then the finished reply."""

    position: int = 0  # > 0: still waiting, this many answers come first
    delta: str = ""
    reply: Reply | None = None  # on the last event
    engine: str = ""  # on the last event: the name of the engine that answered
    note: str = ""  # while waiting: the model is being switched, and what that switch is doing


class QueueFull(AppError, RuntimeError):
    """Every place in the wait queue is taken: ask again in a little while."""

    def __init__(self, message: str, retry_after_s: int = 10):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class LeftQueue(AppError, RuntimeError):
    """The caller pressed Stop while waiting: it leaves the line, nothing was asked."""


_SWITCH = object()  # holds the turn while the engine is replaced


@dataclass(eq=False)
class _Ticket:
    holder: object
    withdrawn: bool = False  # its owner pressed Stop while it waited


def queue_full_message(max_queue: int, slots: int) -> str:
    """What a question that finds no slot and no place in the line is told. Pure."""
    answering = f"All {slots} answer slots are busy" if slots > 1 else "An answer is running"
    if max_queue <= 0:
        return f"{answering} and this server keeps no queue (--max-queue 0): ask again in a little while."
    return f"All {max_queue} places in the queue are taken: ask again in a little while."


class ChatService:
    """Runs chats on one engine for everyone: the page and the API share its queue. Stop only stops the
    caller's own generation.

    Concurrency, all under `_cond`: `_holders` are whoever has one of the engine's `slots` now (answer
    owners; the engine's own `max_parallel`: several on a continuous-batching engine, else one), or the
    switch, which takes the engine alone and does not queue behind waiting answers; `_waiting` are the
    tickets in line, first come first served, at most `max_queue` of them. A waiter that goes away (a closed
    tab, a dropped API client) or presses Stop (`cancel` withdraws its ticket) leaves the line at once. `swap` and
    `release` wait until no answer runs, then hold the engine while it changes. While the page switches
    models (`begin_switch` .. `end_switch`) and no engine is loaded, questions wait instead of failing.
    `cancel(owner)` stops that owner's replies only (`_replies`), in the engine.
    """

    def __init__(self, engine: Engine | None, max_queue: int = 16):
        self.engine = engine
        self.max_queue = max_queue
        self._cond = threading.Condition()
        self._holders: list[object] = []
        self._replies: dict[str, list[Reply]] = {}
        self._waiting: list[_Ticket] = []
        self._switching = ""

    @property
    def slots(self) -> int:
        return max(1, getattr(self.engine, "max_parallel", 1) or 1)

    @property
    def switching(self) -> str:
        """What a model switch is doing now ("" when none runs)."""
        return self._switching

    def begin_switch(self, what: str) -> None:
        with self._cond:
            self._switching = what or "switching models"
            self._cond.notify_all()

    def end_switch(self) -> None:
        with self._cond:
            self._switching = ""
            self._cond.notify_all()

    def _free(self, holder: object) -> bool:
        if _SWITCH in self._holders:
            return False
        if holder is _SWITCH:
            return not self._holders
        if self.engine is None and self._switching:
            return False  # the next model is loading: wait for it
        return len(self._holders) < self.slots

    # -- the turn ---------------------------------------------------------------------------
    def _wait_turn(self, holder: object) -> Iterator[int]:
        """Yields this caller's position while it waits; returns once it holds the turn."""
        ticket = _Ticket(holder)
        with self._cond:
            if self._free(holder) and not self._waiting:
                self._holders.append(holder)
                return
            if len(self._waiting) >= self.max_queue and holder is not _SWITCH:
                raise QueueFull(queue_full_message(self.max_queue, self.slots))
            self._waiting.append(ticket)
        try:
            while True:
                with self._cond:
                    if ticket.withdrawn:
                        raise LeftQueue("Stopped before its turn: nothing was asked.")
                    first = holder is _SWITCH or self._waiting[0] is ticket
                    if first and self._free(holder):
                        self._waiting.remove(ticket)
                        self._holders.append(holder)
                        return
                    position = self._waiting.index(ticket) + 1
                yield position
                with self._cond:
                    self._cond.wait(0.25)
        finally:
            with self._cond:
                if ticket in self._waiting:  # left the line (closed, Stop, error) before its turn
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
        Until `swap` gives a new one, questions wait while a switch runs (`begin_switch`), else get a clear
        "being switched" message."""
        self._exclusive()
        try:
            old, self.engine = self.engine, None
        finally:
            self._end_turn(_SWITCH)
        if old is not None:
            old.close()
        return old

    def cancel(self, owner: str) -> bool:
        """Stop `owner`'s answer in the engine, or take its question out of the line; True if there was one."""
        with self._cond:
            replies = list(self._replies.get(owner, ()))
            waiting = [t for t in self._waiting if t.holder == owner]
            for ticket in waiting:
                ticket.withdrawn = True
            if waiting:
                self._cond.notify_all()
        for reply in replies:
            reply.cancel()
        return bool(replies or waiting)

    def busy(self, owner: str) -> bool:
        """Is an answer of `owner` running or waiting?"""
        with self._cond:
            return bool(self._replies.get(owner)) or owner in self._holders or any(
                t.holder == owner for t in self._waiting)

    # -- answering --------------------------------------------------------------------------
    def ask(self, owner: str, messages: list[dict], sampling: Sampling) -> Iterator[Event]:
        """The API's way in: queue, then stream one answer to `messages`. Closing the iterator (a client
        that went away) leaves the queue or stops the generation in the engine."""
        waiting = self._wait_turn(owner)
        try:
            for position in waiting:
                yield Event(position=position, note=self._switching if self.engine is None else "")
        finally:
            waiting.close()  # a caller gone while waiting leaves the line now, not when collected
        try:
            engine = self.engine
            if engine is None:
                raise AppError("The model is being switched: ask again in a moment.")
            reply = engine.stream(messages, sampling)
            with self._cond:
                self._replies.setdefault(owner, []).append(reply)
            try:
                for delta in reply:
                    yield Event(delta=delta)
            finally:
                with self._cond:
                    mine = self._replies.get(owner, [])
                    if reply in mine:
                        mine.remove(reply)
                    if not mine:
                        self._replies.pop(owner, None)
                reply.close()
            yield Event(reply=reply, engine=engine.name)
        finally:
            self._end_turn(owner)

    def respond(self, owner: str, conversation: Conversation, message: str, sampling: Sampling,
                system_prompt: str = DEFAULT_SYSTEM_PROMPT) -> Iterator[Update]:
        """The page's way in: stream one answer; each Update holds the whole conversation as it stands."""
        message = message.strip()
        if not message:
            yield Update(conversation, error="Type a message first.", done=True)
            return
        draft = Conversation(conversation.turns + [Turn("user", message), Turn("assistant", "")])
        messages = draft.engine_messages(system_prompt)[:-1]
        answer = ""
        try:
            for event in self.ask(owner, messages, sampling):
                if event.position:
                    yield Update(conversation, position=event.position, note=event.note)
                elif event.reply is not None:
                    draft.turns[-1] = Turn("assistant", answer, figures=figures_line(event.reply, event.engine),
                                           speed=speed_of(event.reply))
                    yield Update(draft, done=True)
                else:
                    answer += event.delta
                    draft.turns[-1] = Turn("assistant", answer)
                    yield Update(Conversation(list(draft.turns)))  # a snapshot per update
        except LeftQueue:  # Stop while waiting: nothing was asked, the question goes back into the box
            yield Update(conversation, done=True, give_back=message)
        except AppError as err:
            if not answer:  # nothing was answered: the chat stays as it was, the message goes back
                yield Update(conversation, error=str(err), done=True, give_back=message)
                return
            # the partial answer stays, marked, and the next question works as usual
            draft.turns[-1] = Turn("assistant", answer, figures=f"cut off: {err}")
            yield Update(draft, error=str(err), done=True)


def waiting_line(update: Update) -> str:
    """What a waiting user reads in place of the answer."""
    if update.note:
        return f"Waiting: the model is being switched ({update.note})..."
    n = update.position
    return f"Waiting: {n} answer{'s' if n > 1 else ''} before yours..."


def figures_line(reply, engine: str = "") -> str:
    """Device · engine · model · time to first token · tokens/s · tokens · why it ended, and notes."""
    stats = reply.stats
    parts = []
    if stats is not None:
        parts += [stats.device] + ([engine] if engine else []) + [
            stats.model, f"first token {stats.ttft_s:.2f} s", f"{stats.tokens_per_s:.1f} tokens/s",
            f"{stats.generated_tokens} tokens", ENDED.get(stats.finish_reason, f"ended: {stats.finish_reason}")]
    if reply.seed is not None:
        parts.append(f"seed {reply.seed}")
    parts.extend(reply.notices)
    return " · ".join(parts)


def speed_of(reply) -> tuple[float, float] | None:
    stats = reply.stats
    if stats is None or not stats.generated_tokens:
        return None
    return round(stats.ttft_s, 3), round(stats.tokens_per_s, 2)


def model_defaults(engine: Engine | None) -> Sampling:
    """The sampling the settings start from and "Reset" goes back to: the engine's own (`defaults`, read from
    the model's generation config) when it offers them, else the app's."""
    defaults = getattr(engine, "defaults", None)
    return defaults if isinstance(defaults, Sampling) else Sampling()
