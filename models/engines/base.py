"""The engine seam: every engine streams a chat reply the same way.

    engine = load(spec)                     # models.engines.load
    reply = engine.stream(messages, Sampling(max_new_tokens=128))
    for delta in reply: print(delta, end="")
    reply.stats.tokens_per_s

One engine serves one generation at a time: `stream` waits for the previous reply to finish
(callers queue). `cancel()` stops the running generation inside the engine, and closing a
reply early (a UI that stops iterating) does the same.
"""

from __future__ import annotations

import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field

from .context import Message, fit_messages


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0  # 0 means greedy
    top_p: float = 1.0
    top_k: int = 0  # 0: no top-k limit
    max_new_tokens: int = 512
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


@dataclass(frozen=True)
class ReplyStats:
    device: str
    model: str
    ttft_s: float  # time to first token
    tokens_per_s: float  # decode rate after the first token
    prompt_tokens: int
    generated_tokens: int
    finish_reason: str  # "stop" | "length" | "cancelled"
    total_s: float

    def line(self) -> str:
        return (f"{self.device} · {self.model} · first token {self.ttft_s:.2f} s · "
                f"{self.tokens_per_s:.1f} tokens/s · {self.generated_tokens} tokens")


@dataclass(frozen=True)
class EngineSpec:
    """What to load: a path, the engine that reads it and the device to run it on."""

    path: str
    engine: str  # "openvino-genai" | "onnxruntime-genai" | "npu-acceleration-library"
    device: str  # the engine's own device id: "CPU", "GPU.0", "NPU", "dml:0", "cpu"
    label: str  # shown to the user
    precision: str = ""
    context_length: int = 4096
    cache_dir: str | None = None
    options: dict = field(default_factory=dict)


# Control tokens look like <|im_end|>, <|end|>, <|assistant|>, <s>, </s>. A user's text must
# never be read as one: a word joiner after "<" keeps the text visible and breaks the match.
_CONTROL = re.compile(r"<(\|[^<>|\s]{1,40}\||/?s)>")
_WORD_JOINER = "\u2060"


def neutralize_control_tokens(text: str) -> str:
    return _CONTROL.sub(lambda m: "<" + _WORD_JOINER + m.group(1) + ">", text)


def sanitize(messages: list[Message]) -> list[Message]:
    """Text typed by people (user and assistant turns) is text, never control tokens."""
    return [
        {"role": m["role"], "content": m["content"] if m["role"] == "system"
         else neutralize_control_tokens(str(m["content"]))}
        for m in messages
    ]


class Reply:
    """Iterating streams text deltas; `text()` waits for the whole reply; `stats` when done."""

    def __init__(self, deltas: Iterator[str]):
        self._deltas = deltas
        self._parts: list[str] = []
        self.stats: ReplyStats | None = None
        self.notices: list[str] = []  # e.g. "older turns were left out to fit the context"

    def __iter__(self) -> Iterator[str]:
        for delta in self._deltas:
            self._parts.append(delta)
            yield delta

    def text(self) -> str:
        for _ in self:
            pass
        return "".join(self._parts)

    def close(self) -> None:
        """Stop early: the engine stops generating."""
        close = getattr(self._deltas, "close", None)
        if close:
            close()


class Engine(ABC):
    name: str = "engine"

    def __init__(self, spec: EngineSpec):
        self.spec = spec
        self._busy = threading.Lock()
        self._cancel = threading.Event()

    @property
    def device(self) -> str:
        return self.spec.device

    def stream(self, messages: list[Message], sampling: Sampling = Sampling()) -> Reply:
        reply = Reply(iter(()))
        reply._deltas = self._serialised(sanitize(messages), sampling, reply)
        return reply

    def _serialised(self, messages: list[Message], sampling: Sampling, reply: Reply) -> Iterator[str]:
        with self._busy:  # one generation at a time; the next caller waits here
            self._cancel.clear()
            messages, notice = fit_messages(messages, self.count_tokens, self.spec.context_length,
                                            sampling.max_new_tokens)
            if notice:
                reply.notices.append(notice)
            yield from self._generate(messages, sampling, reply)

    def cancel(self) -> None:
        self._cancel.set()

    @abstractmethod
    def count_tokens(self, messages: list[Message]) -> int:
        """Prompt length of these messages with the model's own chat template."""

    @abstractmethod
    def _generate(self, messages: list[Message], sampling: Sampling, reply: Reply) -> Iterator[str]:
        """Yield deltas for messages that fit the window; set reply.stats before returning;
        stop soon after self._cancel is set."""

    def close(self) -> None:  # noqa: B027 - engines without resources need nothing
        pass
