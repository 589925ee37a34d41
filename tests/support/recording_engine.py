"""A fake engine that records what reaches it, for the page's logic (no model needed)."""

from __future__ import annotations

from models.engines.base import Engine, EngineSpec, Reply, ReplyStats


class RecordingEngine(Engine):
    name = "fake"

    def __init__(self, words=("Hello", " there", "."), error=None):
        super().__init__(EngineSpec(path="-", engine="fake", device="CPU", label="fake"))
        self.words, self.error, self.calls = words, error, []

    def count_tokens(self, messages):
        return sum(len(m["content"].split()) + 2 for m in messages)

    def _generate(self, messages, sampling, reply: Reply):
        self.calls.append(messages)
        if self.error:
            raise self.error
        sent = 0
        for w in self.words:
            if self._cancel.is_set():
                break
            sent += 1
            yield w
        reply.stats = ReplyStats("CPU", "fake", 0.05, 20.0, 7, sent,
                                 "cancelled" if self._cancel.is_set() else "stop", 0.2)
