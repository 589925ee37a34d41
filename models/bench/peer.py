"""The peer: llama.cpp (through llama-cpp-python, optional: requirements-bench.txt) on the same GGUF, at the
same thread count, with the same greedy generation, timed the same way as the app's engines."""

from __future__ import annotations

import importlib.metadata
import os
import time
from pathlib import Path

from .stats import Sample, sample

HOW_TO_INSTALL = ("pip install llama-cpp-python==0.3.36 into .venv (no wheel on PyPI for most platforms: it "
                  "builds llama.cpp from source, ~20-30 minutes on 2 cores; see requirements-bench.txt)")


def version() -> str | None:
    try:
        return importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        return None


def threads() -> int:
    """The thread count the app's engines use on the CPU: one per physical core (OpenVINO's LATENCY hint
    and ONNX Runtime's default intra-op pool both do so)."""
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


class LlamaCpp:
    """One GGUF loaded in llama.cpp, with a window as large as the app's."""

    name = "llama.cpp"

    def __init__(self, gguf: Path, n_threads: int, context_length: int):
        from llama_cpp import Llama

        started = time.perf_counter()
        self.threads = n_threads
        self._llm = Llama(model_path=str(gguf), n_threads=n_threads, n_threads_batch=n_threads,
                          n_ctx=context_length, verbose=False)
        self.load_s = time.perf_counter() - started

    def generate(self, messages: list[dict], max_new_tokens: int) -> Sample:
        asked = time.perf_counter()
        stamps: list[float] = []
        tokens = 0
        self._llm.reset()  # no prefix kept from the last run: every run prefills its whole prompt, as the others do
        for chunk in self._llm.create_chat_completion(messages=messages, max_tokens=max_new_tokens, temperature=0.0,
                                                      top_k=1, top_p=1.0, repeat_penalty=1.0, stream=True):
            delta = chunk["choices"][0]["delta"].get("content")
            if delta:
                stamps.append(time.perf_counter())
                tokens += 1
        return sample(asked, stamps, tokens)

    def close(self) -> None:
        self._llm.close()
        self._llm = None
