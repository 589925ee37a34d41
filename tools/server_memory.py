"""A server's memory from outside: the resident memory of a process and its children, the process behind a URL, and
filling the batching engine's KV-cache pool until the RSS stops growing (the soak's --fill-kv, RSS per request)."""

from __future__ import annotations

import random
import threading
import time
from urllib.parse import urlsplit

import httpx
import psutil

WORDS = ("France", "Germany", "Japan", "Italy", "Spain", "Canada", "Egypt", "Brazil")  # random prompts
FILL_WORDS = 400  # words of one --fill-kv prompt to begin with (about 2,000 tokens); halved while too long

FILL_FLAT_S = 20  # --fill-kv stops once the RSS moved less than FILL_FLAT_PCT over this many seconds

FILL_FLAT_PCT = 0.5


def error_code(r: httpx.Response) -> str | None:
    """The API's error code of a response ("queue_full", "context_length_exceeded"), if it has one."""
    try:
        return r.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def rss_of(pid: int) -> int | None:
    """Resident memory of a process and its children, in bytes; None once it is gone."""
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return None
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total



def server_pid(url: str) -> int | None:
    """The process listening on the URL's port on this machine, if it can be seen."""
    port = urlsplit(url).port or 80
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return conn.pid
    except psutil.Error:
        return None
    return None



def fill_kv(url: str, pid: int, senders: int = 4, max_seconds: float = 300, timeout: float = 300,
            stop: threading.Event | None = None) -> tuple[float, int, int | None, int | None, list[str]]:
    """Long prompts of random words (nothing for prefix caching to reuse; one-token answers) from `senders`
    threads until the server's RSS moved less than FILL_FLAT_PCT over FILL_FLAT_S seconds in which prompts
    were answered, or `max_seconds`: the engine's KV pool is resident then. The prompts in flight at the end
    are waited for (at most `timeout`), so that they do not slow the soak after it.
    Returns (seconds, prompt tokens answered, RSS before, RSS after, errors)."""
    stop = stop or threading.Event()
    done = threading.Event()
    started = time.monotonic()
    tokens = [0]
    answered: list[float] = []  # when each prompt was answered
    errors: list[str] = []
    lock = threading.Lock()
    before = rss_of(pid)

    def prompts(i: int) -> None:
        rnd = random.Random(f"fill-{i}-{time.time_ns()}")
        words = FILL_WORDS
        with httpx.Client(base_url=url, timeout=httpx.Timeout(timeout, connect=10)) as http:
            while not done.is_set() and not stop.is_set():
                text = " ".join(f"{rnd.choice(WORDS)}{rnd.randrange(1000)}" for _ in range(words))
                try:
                    r = http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": text}],
                                                                 "max_tokens": 1, "temperature": 0})
                except httpx.HTTPError as err:
                    with lock:
                        errors.append(f"{type(err).__name__}: {err}")
                    return
                if r.status_code == 200:
                    with lock:
                        tokens[0] += int(r.json().get("usage", {}).get("prompt_tokens") or 0)
                        answered.append(time.monotonic() - started)
                elif error_code(r) == "context_length_exceeded" and words > 50:
                    words //= 2  # a smaller window than this prompt: shorter ones
                elif r.status_code != 429:
                    with lock:
                        errors.append(f"HTTP {r.status_code}: {r.text[:200]}")
                    return

    threads = [threading.Thread(target=prompts, args=(i,), name=f"soak-fill-{i}", daemon=True)
               for i in range(senders)]
    for t in threads:
        t.start()
    samples: list[tuple[float, int]] = []
    try:
        while not stop.wait(1.0):
            now, rss = time.monotonic() - started, rss_of(pid)
            if rss is None or now >= max_seconds or errors or not any(t.is_alive() for t in threads):
                break
            samples.append((now, rss))
            window = [r for t, r in samples if t >= now - FILL_FLAT_S]
            with lock:
                progress = sum(t >= now - FILL_FLAT_S for t in answered)
            flat = 100 * (max(window) - min(window)) / min(window) < FILL_FLAT_PCT
            if now >= FILL_FLAT_S and progress >= 2 and flat:  # answered prompts, and the RSS did not move
                break
    finally:
        done.set()
        for t in threads:
            t.join(timeout)
    return time.monotonic() - started, tokens[0], before, rss_of(pid), errors
