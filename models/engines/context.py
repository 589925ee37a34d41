"""One budget rule for the context window, used by trimming and by every adapter.

    prompt + answer <= window                       (ONNX Runtime GenAI's max_length, OpenVINO's KV cache)
    prompt <= prompt_limit                          (the NPU's MAX_PROMPT_LEN, fixed at compile time)
    answer reserve = min(max_new_tokens, max(64, window // 4))

Trimming drops the oldest turns until the prompt fits `prompt_max`; the answer is then given what is
left of the window, never more than asked (`answer_tokens`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import PromptTooLong

Message = dict  # {"role": "system" | "user" | "assistant", "content": str}

MIN_ANSWER_TOKENS = 64


@dataclass(frozen=True)
class Budget:
    window: int  # prompt + answer tokens the engine can hold
    prompt_limit: int | None = None  # a hard limit on the prompt alone (NPU), if the engine has one

    def reserve(self, max_new_tokens: int) -> int:
        return max(1, min(max_new_tokens, max(MIN_ANSWER_TOKENS, self.window // 4)))

    def prompt_max(self, max_new_tokens: int) -> int:
        limit = self.window - self.reserve(max_new_tokens)
        return min(limit, self.prompt_limit) if self.prompt_limit else limit

    def answer_tokens(self, prompt_tokens: int, max_new_tokens: int) -> int:
        return max(1, min(max_new_tokens, self.window - prompt_tokens))


def fit_messages(messages: list[Message], count_tokens: Callable[[list[Message]], int], budget: Budget,
                 max_new_tokens: int) -> tuple[list[Message], str | None, int]:
    """(messages that fit, a notice if any were dropped, their prompt length in tokens). Every system message is
    counted and kept where it stands (a second one: LangChain memory, RAG prompts, `developer` beside `system`);
    only turns are dropped, oldest first, and what is kept starts with a user turn."""
    limit = budget.prompt_max(max_new_tokens)
    kept = list(messages)
    dropped = 0
    while (used := count_tokens(kept)) > limit:
        turns = [i for i, m in enumerate(kept) if m["role"] != "system"]
        if len(turns) <= 1:
            hard = f" (this device takes at most {budget.prompt_limit} prompt tokens)" \
                if budget.prompt_limit and budget.prompt_limit == limit else ""
            raise PromptTooLong(
                f"The message is {used} tokens with the system prompt; this model's window is {budget.window} "
                f"tokens, {budget.window - limit} of them kept for the answer{hard}. "
                f"Shorten it to under {limit} tokens."
            )
        drop = {turns[0]}  # the oldest turn, and what follows it up to the next user turn
        while len(drop) < len(turns) - 1 and kept[turns[len(drop)]]["role"] != "user":
            drop.add(turns[len(drop)])
        kept = [m for i, m in enumerate(kept) if i not in drop]
        dropped += len(drop)
    if not dropped:
        return messages, None, used
    return kept, (f"The {dropped} oldest message{'s' if dropped > 1 else ''} of this chat no longer fit the "
                  f"{budget.window}-token window and {'were' if dropped > 1 else 'was'} left out."), used
