"""A person's text is text, never the model's control tokens, in every role. A system or developer message carries
text from elsewhere too (LangChain's RAG prompt puts retrieved documents there), and `<|im_end|><|im_start|>assistant`
typed into one would otherwise forge a turn. The tokens come from the model's own tokenizer (read when the engine
loads: every template the catalog and `--model PATH` can load, not a hand-written list); the common shapes
(`<|...|>`, `<s>`, `</s>`) are covered for an engine that cannot list its own.

A word joiner (U+2060) after a token's first character keeps the text as it reads and breaks the match."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path

WORD_JOINER = "\u2060"
COMMON = r"<\|[^<>|\s]{1,40}\|>|</?s>"
# What a control token looks like in a vocabulary: <...> or [...], no spaces (<|im_end|>, <start_of_turn>, [INST])
MARKUP = re.compile(r"^(<[^<>\s]{1,60}>|\[[^\[\]\s]{1,30}\])$")


def from_vocab(vocab: dict, is_special: Callable[[int], bool]) -> tuple[str, ...]:
    """The control tokens of a vocabulary ({token: id}, keys str or bytes): markup-shaped entries the tokenizer
    treats as special (`is_special(id)`: dropped when decoding with skip_special_tokens, say)."""
    out = []
    for key, token_id in vocab.items():
        text = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
        if MARKUP.match(text) and is_special(int(token_id)):
            out.append(text)
    return tuple(sorted(out))


def from_tokenizer_json(folder: Path) -> tuple[str, ...]:
    """The special added tokens of a Hugging Face tokenizer.json (ONNX Runtime GenAI folders carry one)."""
    try:
        added = json.loads((Path(folder) / "tokenizer.json").read_text(encoding="utf-8")).get("added_tokens", [])
    except (OSError, ValueError, AttributeError):
        return ()
    return tuple(sorted(t["content"] for t in added if isinstance(t, dict) and t.get("special")
                        and isinstance(t.get("content"), str) and t["content"].strip()))


class Neutralizer:
    """Breaks every control token of `tokens` (and the common shapes) in a text."""

    def __init__(self, tokens: Iterable[str] = ()):
        self.tokens = tuple(sorted(set(tokens), key=len, reverse=True))
        self._pattern = re.compile("|".join([*(re.escape(t) for t in self.tokens), COMMON]))

    def __call__(self, text: str) -> str:
        return self._pattern.sub(lambda m: m.group(0)[0] + WORD_JOINER + m.group(0)[1:], text)

    def messages(self, messages: list[dict]) -> list[dict]:
        """Every role's content as text (the other keys, a `tools` list rendered by the template, as they are)."""
        return [{**m, "content": self(str(m["content"]))} for m in messages]
