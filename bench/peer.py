"""The peer: llama.cpp (through llama-cpp-python, optional: requirements-bench.txt) on the same GGUF, at the
same thread count, with the same greedy generation, timed the same way as the app's engines.

It runs in a child process of its own (`python -m bench.peer GGUF THREADS WINDOW`, one JSON line per
request and per answer): a native crash there (this llama.cpp build's AMX kernels segfault on some VMs) is
reported as the peer's failure and the benchmark goes on; and its OpenMP threads do not share a process
with OpenVINO's TBB ones. The timings are taken inside the child, from the call to each streamed piece.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .stats import Sample

HOW_TO_INSTALL = ("pip install llama-cpp-python==0.3.36 into .venv (no wheel on PyPI for most platforms: it "
                  "builds llama.cpp from source, about 10 minutes on 2 cores; leave AMX out on a VM; see "
                  "requirements-bench.txt)")


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


class PeerError(RuntimeError):
    pass


def _died(proc: subprocess.Popen, what: str) -> PeerError:
    code = proc.wait()
    how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
    err = (proc.stderr.read() if proc.stderr else "").strip().splitlines()
    return PeerError(f"llama.cpp {what}: its process ended ({how})" + (f": {err[-1][:200]}" if err else ""))


class LlamaCpp:
    """One GGUF loaded in llama.cpp in a child process, with a window as large as the app's."""

    name = "llama.cpp"

    def __init__(self, gguf: Path, n_threads: int, context_length: int, plain_kernels: bool = True):
        self.threads = n_threads
        self.plain_kernels = plain_kernels
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.peer", str(gguf), str(n_threads), str(context_length),
             "plain" if plain_kernels else "extra"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=Path(__file__).resolve().parents[1])
        ready = self._proc.stdout.readline()
        if not ready:
            raise _died(self._proc, "could not load the GGUF")
        self.load_s = json.loads(ready)["load_s"]

    def generate(self, messages: list[dict], max_new_tokens: int) -> Sample:
        try:
            self._proc.stdin.write(json.dumps({"messages": messages, "max_new_tokens": max_new_tokens}) + "\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            raise _died(self._proc, "failed while generating")
        got = json.loads(line)
        return Sample(got["ttft_s"], tuple(got["gaps_s"]), got["tokens"], got["pieces"], got["total_s"])

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.close()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


def _serve(gguf: str, n_threads: int, context_length: int, plain: bool) -> None:
    """The child: load, say so, then answer one JSON request per line until stdin closes."""
    import llama_cpp.llama_cpp as low

    if plain:  # no extra buffer types: llama.cpp's AMX repacking crashes this build on some VMs
        default = low.llama_model_default_params

        def params():
            p = default()
            p.use_extra_bufts = False
            return p

        low.llama_model_default_params = params
    from llama_cpp import Llama

    from bench.stats import sample

    started = time.perf_counter()
    llm = Llama(model_path=gguf, n_threads=n_threads, n_threads_batch=n_threads, n_ctx=context_length, verbose=False)
    print(json.dumps({"load_s": time.perf_counter() - started}), flush=True)
    for line in sys.stdin:
        ask = json.loads(line)  # what its cache shares with the last prompt is reused, as OpenVINO's prefix cache does
        asked = time.perf_counter()
        stamps = []
        for chunk in llm.create_chat_completion(messages=ask["messages"], max_tokens=ask["max_new_tokens"],
                                                temperature=0.0, top_k=1, top_p=1.0, repeat_penalty=1.0,
                                                stream=True):
            if chunk["choices"][0]["delta"].get("content"):
                stamps.append(time.perf_counter())
        s = sample(asked, stamps)
        print(json.dumps({"ttft_s": s.ttft_s, "gaps_s": s.gaps_s, "tokens": s.tokens, "pieces": s.pieces,
                          "total_s": s.total_s}), flush=True)


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "plain")
