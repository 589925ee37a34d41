"""Fitting a chat into the model's context window: oldest turns go first, the system prompt stays."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import PromptTooLong

Message = dict  # {"role": "system" | "user" | "assistant", "content": str}

MIN_ANSWER_TOKENS = 64


def fit_messages(messages: list[Message], count_tokens: Callable[[list[Message]], int],
                 context_length: int, max_new_tokens: int) -> tuple[list[Message], str | None]:
    """Return the messages that fit (prompt + answer budget <= window) and a notice if any were dropped."""
    answer_budget = min(max_new_tokens, max(MIN_ANSWER_TOKENS, context_length // 4))
    limit = context_length - answer_budget
    system = [m for m in messages if m["role"] == "system"][:1]
    turns = [m for m in messages if m["role"] != "system"]
    dropped = 0
    while True:
        kept = system + turns
        used = count_tokens(kept)
        if used <= limit:
            break
        if len(turns) <= 1:
            raise PromptTooLong(
                f"The message is {used} tokens with the system prompt; this model's window is {context_length} "
                f"tokens, {answer_budget} of them kept for the answer. Shorten it to under {limit} tokens."
            )
        # drop the oldest turn; keep the list starting with a user turn
        turns = turns[1:]
        dropped += 1
        while len(turns) > 1 and turns[0]["role"] != "user":
            turns = turns[1:]
            dropped += 1
    if not dropped:
        return messages, None
    return kept, (f"The {dropped} oldest message{'s' if dropped > 1 else ''} of this chat no longer fit the "
                  f"{context_length}-token window and {'were' if dropped > 1 else 'was'} left out.")
