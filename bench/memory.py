"""Memory: the process's peak resident memory around a step, and this machine's memory read bandwidth."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def rss_bytes() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _vm_hwm() -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class PeakRss:
    """The highest resident memory of this process while the block runs.

    Linux: the kernel's own high-water mark (VmHWM), reset on entry by writing 5 to /proc/self/clear_refs.
    Elsewhere (or when that cannot be written): psutil sampled every 5 ms in a thread, which can miss a
    peak shorter than that."""

    def __init__(self, every_s: float = 0.005):
        self._every = every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sampled = 0
        self.start = self.peak = self.end = 0
        self.method = ""

    def __enter__(self) -> PeakRss:
        self.start = rss_bytes()
        if sys.platform.startswith("linux"):
            try:
                _CLEAR_REFS.write_text("5")
                self.method = "VmHWM"
                return self
            except OSError:
                pass
        self.method = "sampled"
        self._sampled = self.start
        self._thread = threading.Thread(target=self._sample, name="bench-rss", daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self._every):
            self._sampled = max(self._sampled, rss_bytes())

    def __exit__(self, *exc) -> None:
        self.end = rss_bytes()
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.peak = max(self._sampled, self.end)
        else:
            self.peak = max(_vm_hwm() or 0, self.end)

    @property
    def growth(self) -> int:
        """Peak minus what the process held on entry."""
        return max(0, self.peak - self.start)


def _read_after(barrier: threading.Barrier, part) -> None:
    barrier.wait()
    part.sum()


def read_bandwidth(size_bytes: int = 1 << 30, threads: int | None = None, repeats: int = 3) -> dict:
    """Memory read bandwidth: `threads` threads each sum their own slice of one array, best of `repeats`.
    numpy's reductions release the GIL, so the threads read at once, as an engine's threads do. The array
    should be larger than the last-level cache (the default, 1 GiB, is; a smaller one measures the cache)."""
    import numpy as np

    threads = threads or max(1, os.cpu_count() or 1)
    count = size_bytes // 8
    data = np.ones(count, dtype=np.float64)  # written once: every page is really there
    parts = np.array_split(data, threads)
    best = 0.0
    for _ in range(repeats):
        barrier = threading.Barrier(threads + 1)
        workers = [threading.Thread(target=_read_after, args=(barrier, p)) for p in parts]
        for w in workers:
            w.start()
        barrier.wait()
        started = time.perf_counter()
        for w in workers:
            w.join()
        best = max(best, data.nbytes / (time.perf_counter() - started))
    del data, parts
    return {"bytes_per_s": best, "array_bytes": count * 8, "threads": threads, "repeats": repeats,
            "method": "numpy float64 sum, one slice per thread, best of the repeats"}


def model_peak(spec, new_tokens: int, timeout_s: float = 600) -> dict:
    """Peak memory of one model alone: a child process loads it (as the app does, warm-up included) and
    generates once; what it held at its peak minus what it held before loading. A child of its own, because
    memory freed inside a process that loaded other models first does not go back to the OS and would hide
    what this one needs."""
    import dataclasses
    import json
    import subprocess

    child = subprocess.run([sys.executable, "-m", "bench.memory", json.dumps(dataclasses.asdict(spec)),
                            str(new_tokens)], capture_output=True, text=True, timeout=timeout_s,
                           cwd=Path(__file__).resolve().parents[1])
    lines = child.stdout.strip().splitlines()
    if child.returncode != 0 or not lines:
        err = (child.stderr.strip().splitlines() or [f"exit code {child.returncode}"])[-1]
        raise RuntimeError(f"the memory probe failed: {err[:200]}")
    return json.loads(lines[-1])


def _probe_child(spec_json: str, new_tokens: int) -> None:
    import json

    from models.engines import EngineSpec, Sampling, load

    spec = EngineSpec(**json.loads(spec_json))
    before = rss_bytes()
    with PeakRss() as meter:
        engine = load(spec)
        engine.stream([{"role": "user", "content": "Write a long story about a dragon and a knight."}],
                      Sampling(max_new_tokens=new_tokens)).text()
        held = rss_bytes()
    print(json.dumps({"peak_bytes": max(0, meter.peak - before), "resident_bytes": max(0, held - before),
                      "method": meter.method}), flush=True)
    engine.close()


if __name__ == "__main__":
    _probe_child(sys.argv[1], int(sys.argv[2]))
