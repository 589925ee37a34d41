"""Page logic, independent of Gradio: turns, the figures line, and who may stop what.

The conversation the model sees is kept apart from what the page shows: the page adds a
figures line under each answer, the model never reads it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from models.engines import Engine, Sampling
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


class ChatService:
    """Runs chats on one engine. Stop only stops the caller's own generation.

    Concurrency: `_turn` is held for the whole of one answer (one answer at a time; others wait),
    and by `swap`/`release`, so the engine never changes under a running answer. `_lock` guards
    `_owner`, the session whose answer is running, so a Stop from anyone else does nothing.
    """

    def __init__(self, engine: Engine | None):
        self.engine = engine
        self._owner: str | None = None
        self._lock = threading.Lock()  # guards _owner
        self._turn = threading.Lock()  # one answer at a time; other sessions wait their turn

    def swap(self, engine: Engine) -> Engine | None:
        """Serve the next answers from another engine, after the running answer ends; returns the old one."""
        with self._turn:
            old, self.engine = self.engine, engine
        return old

    def release(self) -> Engine | None:
        """Close the running engine (after its answer ends) to free its memory before another loads.
        Until `swap` gives a new one, questions get a clear "being switched" message."""
        with self._turn:
            old, self.engine = self.engine, None
        if old is not None:
            old.close()
        return old

    def cancel(self, owner: str) -> bool:
        with self._lock:
            if self._owner != owner or self.engine is None:
                return False
            self.engine.cancel()
            return True

    def respond(self, owner: str, conversation: Conversation, message: str, sampling: Sampling,
                system_prompt: str = DEFAULT_SYSTEM_PROMPT) -> Iterator[Update]:
        """Stream one answer; each Update holds the whole conversation as it stands."""
        message = message.strip()
        if not message:
            yield Update(conversation, error="Type a message first.", done=True)
            return
        draft = Conversation(conversation.turns + [Turn("user", message), Turn("assistant", "")])
        messages = draft.engine_messages(system_prompt)[:-1]
        with self._turn:
            if self.engine is None:
                yield Update(conversation, error="The model is being switched: ask again in a moment.", done=True,
                             give_back=message)
                return
            with self._lock:
                self._owner = owner
            try:
                reply = self.engine.stream(messages, sampling)
                yield from self._stream(owner, conversation, draft, reply, message)
            finally:
                with self._lock:
                    if self._owner == owner:
                        self._owner = None

    def _stream(self, owner: str, conversation: Conversation, draft: Conversation, reply,
                message: str) -> Iterator[Update]:
        answer = ""
        try:
            for delta in reply:
                answer += delta
                draft.turns[-1] = Turn("assistant", answer)
                yield Update(Conversation(list(draft.turns)))  # a snapshot per update
        except AppError as err:
            if not answer:  # nothing was answered: the chat stays as it was, the message goes back
                yield Update(conversation, error=str(err), done=True, give_back=message)
                return
            # the partial answer stays, marked, and the next question works as usual
            draft.turns[-1] = Turn("assistant", answer, figures=f"cut off: {err}")
            yield Update(draft, error=str(err), done=True)
            return
        finally:
            reply.close()
        draft.turns[-1] = Turn("assistant", answer, figures=figures_line(reply))
        yield Update(draft, done=True)


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
