"""Page logic, independent of Gradio: turns, the figures line, and one answer streamed through the serving queue
(app/serving.py) as conversation snapshots.

The conversation the model sees is kept apart from what the page shows: the page adds a
figures line under each answer, the model never reads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from app.serving import LeftQueue, ServingQueue
from models.engines import Engine, Sampling
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


def respond(queue: ServingQueue, owner: str, conversation: Conversation, message: str, sampling: Sampling,
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
        for event in queue.ask(owner, messages, sampling):
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
