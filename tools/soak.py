"""Soak (a script; the CI short form is tests/e2e/test_soak.py): API clients at once for a bounded time against the
real app on loopback, and what it did to the server.

    .venv/bin/python -m tools.soak [--clients 8] [--seconds 120] [--model smollm2-135m-embedded] [--url URL]
                                   [--fill-kv] [--timeline]

Unless `--url` is given it starts the app itself (`--offline`, the app's default `--parallel`) and always
stops it at the end. Each client keeps its own chat on /v1/chat/completions: a question appended with the
model's answer, turn after turn, and a new chat after `--turns` turns, so the prompt stays far inside the
window (8192 tokens for the embedded SmolLM2 here: a single message over it gets 400
context_length_exceeded; a longer chat has its oldest turns dropped by the server). Requests alternate
streaming and not; every fifth is a stream the client closes after a few chunks (a cancellation). Questions
are about capitals, so answers can be checked (reported, not a pass condition: the small model is often
wrong).

It stops by itself: no request starts after `--seconds`, at most `--max-requests` are sent, each has a
timeout. The report: requests done, errors (a 429 `queue_full` is allowed: the client waits Retry-After and
asks again), every non-cancelled reply complete (finish_reason "stop" or "length", some text, and for a
stream `data: [DONE]`), p50/p95 of time to first token (streams: the first content delta) and of total
latency, and the server's RSS (its process and any children) after warm-up and at the end. Warm-up ends once
every client has finished its first whole chat (the longest prompts it sends) and at least `--warmup` of the
time has passed (allocator arenas, Python's caches). Exit code 0 only if there were no errors but 429s, every
non-cancelled reply was complete and the RSS grew less than 5 % from warm-up to the end.

The KV-cache pool. The batching engine (OpenVINO GenAI's ContinuousBatchingPipeline) is given a KV pool of
window x slots at load (1 GiB for the embedded model with 4 slots), reserved but not yet resident; with prefix
caching its allocator hands out never-used blocks before it reuses those of finished chats, so the RSS climbs
by the whole pool (about 80,000 fresh tokens here) and then stays flat. `--fill-kv` first sends long prompts
of random words until the RSS stops growing (at most `--fill-seconds`), so that the soak after it measures
everything else; without it, a soak shorter than the pool's fill reports that growth, as it is.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tools.server_memory import error_code, fill_kv, rss_of, server_pid
from tools.soak_report import MAX_RSS_GROWTH_PCT, Result, SoakReport, tally

SYSTEM = "You are a helpful assistant. Answer briefly and accurately."
CAPITALS = {"France": "Paris", "Germany": "Berlin", "Japan": "Tokyo", "Italy": "Rome", "Spain": "Madrid",
            "Russia": "Moscow", "Egypt": "Cairo", "China": "Beijing", "Greece": "Athens", "Portugal": "Lisbon",
            "Austria": "Vienna", "Ireland": "Dublin", "Norway": "Oslo", "Poland": "Warsaw", "Peru": "Lima",
            "Kenya": "Nairobi"}
COUNTRIES = list(CAPITALS)
CANCEL_EVERY = 5  # every fifth request of a client is a stream it closes early
CANCEL_AFTER_CHUNKS = 3
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class _Run:
    """What the clients share: the clock, the request budget, the results and the warm-up mark."""

    def __init__(self, clients: int, seconds: float, max_requests: int, warmup_s: float):
        self.started = time.monotonic()
        self.deadline = self.started + seconds
        self.warmup_s = warmup_s
        self._lock = threading.Lock()
        self._budget = max_requests
        self.results: list[Result] = []
        self._first_chat_done: set[int] = set()
        self._clients = clients
        self.warm = threading.Event()
        self.stop = threading.Event()  # the end, or Ctrl-C / SIGTERM of the script

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def take(self) -> bool:
        """One more request may start: time and count are both left."""
        with self._lock:
            if self.stop.is_set() or time.monotonic() >= self.deadline or self._budget <= 0:
                return False
            self._budget -= 1
            return True

    def add(self, result: Result) -> None:
        with self._lock:
            self.results.append(result)

    def chat_done(self, client: int) -> None:
        with self._lock:
            self._first_chat_done.add(client)

    def all_chats_done(self) -> bool:
        with self._lock:
            return len(self._first_chat_done) >= self._clients


def _question(client: int, n: int) -> tuple[str, str]:
    """The n-th question of a client: (text, the capital the answer should name or "")."""
    country = COUNTRIES[(client * 3 + n) % len(COUNTRIES)]
    if n % 3 == 2:
        return f"Name one famous landmark in {CAPITALS[country]}, in one sentence.", ""
    return f"What is the capital of {country}?", CAPITALS[country]


def _usage_tokens(usage: dict | None) -> int:
    return int((usage or {}).get("total_tokens") or 0)


def _ask(http: httpx.Client, stop: threading.Event, deadline: float, client: int, kind: str, messages: list[dict],
         expected: str, max_tokens: int) -> Result:
    body = {"messages": messages, "max_tokens": max_tokens, "temperature": 0}
    if kind != "plain":
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    res = Result(client, kind, expected=expected)
    while True:
        sent = time.perf_counter()
        try:
            if kind == "plain":
                r = http.post("/v1/chat/completions", json=body)
                res.status = r.status_code
                if r.status_code == 200:
                    out = r.json()
                    choice = out["choices"][0]
                    res.text, res.finish = choice["message"]["content"] or "", choice["finish_reason"]
                    res.total_s = time.perf_counter() - sent
                    res.tokens = _usage_tokens(out.get("usage"))
                    res.complete = res.finish in ("stop", "length") and bool(res.text.strip())
                    return res
                refused = r
            else:
                with http.stream("POST", "/v1/chat/completions", json=body) as r:
                    res.status = r.status_code
                    if r.status_code == 200:
                        _read_stream(r, res, sent, cancel=kind == "cancel")
                        return res
                    r.read()
                    refused = r
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as err:
            res.error = f"client {client} {kind}: {type(err).__name__}: {err}"
            return res
        code = error_code(refused)
        if refused.status_code == 429 and code == "queue_full":
            res.refused += 1
            wait = min(float(refused.headers.get("Retry-After", "1") or 1), 10.0)
            if stop.wait(min(wait, max(0.0, deadline - time.monotonic()))) or time.monotonic() >= deadline:
                return res  # refused until the time was up: never answered, not an error
            continue
        res.error = f"client {client} {kind}: HTTP {refused.status_code} {code or ''}: {refused.text[:200]}"
        return res


def _read_stream(r: httpx.Response, res: Result, sent: float, cancel: bool) -> None:
    parts: list[str] = []
    chunks = 0
    done = False
    finishes: list[str] = []
    for line in r.iter_lines():
        if not line:
            continue
        if not line.startswith("data: "):
            res.error = f"client {res.client} {res.kind}: not a server-sent event: {line[:120]!r}"
            return
        data = line[len("data: "):]
        if data == "[DONE]":
            done = True
            break
        frame = json.loads(data)
        if "error" in frame:
            res.error = f"client {res.client} {res.kind}: error frame mid-stream: {frame['error']}"
            return
        res.tokens = _usage_tokens(frame.get("usage")) or res.tokens
        for choice in frame.get("choices", []):
            delta = choice.get("delta", {}).get("content")
            if delta:
                res.ttft_s = res.ttft_s if res.ttft_s is not None else time.perf_counter() - sent
                parts.append(delta)
                chunks += 1
            if choice.get("finish_reason"):
                finishes.append(choice["finish_reason"])
        if cancel and chunks >= CANCEL_AFTER_CHUNKS:
            break  # leaving the `with` closes the connection: the server stops this generation
    res.text = "".join(parts)
    res.total_s = time.perf_counter() - sent
    res.finish = finishes[-1] if finishes else None
    if cancel and not done:
        return  # cancelled: counted apart
    res.kind = "stream"  # a cancellation whose answer ended before it was closed is an ordinary stream
    res.complete = done and len(finishes) == 1 and res.finish in ("stop", "length") and bool(res.text.strip())


def _client(url: str, run: _Run, client: int, turns: int, max_tokens: int, timeout: float) -> None:
    n = 0
    with httpx.Client(base_url=url, timeout=httpx.Timeout(timeout, connect=10)) as http:
        while True:
            chat = [{"role": "system", "content": SYSTEM}]
            for _turn in range(turns):
                if not run.take():
                    return
                kind = "cancel" if n % CANCEL_EVERY == CANCEL_EVERY - 1 else ("stream", "plain")[(n + client) % 2]
                if kind == "cancel":
                    country = COUNTRIES[(client + n) % len(COUNTRIES)]
                    messages = [*chat, {"role": "user", "content": f"Write a long story about the history of "
                                                                   f"{country}."}]
                    res = _ask(http, run.stop, run.deadline, client, kind, messages, "", 400)
                else:
                    question, expected = _question(client, n)
                    messages = [*chat, {"role": "user", "content": question}]
                    res = _ask(http, run.stop, run.deadline, client, kind, messages, expected, max_tokens)
                n += 1
                run.add(res)
                if res.complete:  # the chat grows by this question and its answer
                    chat = [*messages, {"role": "assistant", "content": res.text}]
            run.chat_done(client)


def _sampler(pid: int | None, run: _Run, report: SoakReport, every: float = 0.5) -> None:
    while not run.stop.wait(every):
        if pid is None:
            continue
        rss = rss_of(pid)
        if rss is None:
            continue
        t = run.elapsed()
        report.rss_timeline.append((round(t, 2), rss))
        if not run.warm.is_set() and t >= run.warmup_s and run.all_chats_done():
            report.rss_warm, report.warmup_s = rss, t
            run.warm.set()


def soak(url: str, clients: int = 8, seconds: float = 120, *, pid: int | None = None, turns: int = 5,
         max_tokens: int = 64, max_requests: int | None = None, warmup: float = 0.25, timeout: float = 120,
         fill: bool = False, fill_seconds: float = 300) -> SoakReport:
    """Run `clients` chats at once against the app at `url` (loopback) for `seconds`. `pid`: the server's
    process, for its RSS (found from the port when not given). `warmup`: the least fraction of the time
    before the warm-up RSS is taken (and not before every client has finished one whole chat). `fill`: make
    the engine's KV pool resident first (fill_kv, at most `fill_seconds`)."""
    host = urlsplit(url).hostname or ""
    if host.strip("[]") not in LOOPBACK:
        raise ValueError(f"the soak runs on loopback only, not against {host!r}")
    pid = pid if pid is not None else server_pid(url)
    report = SoakReport(url=url, clients=clients, seconds=seconds)
    if pid is None:
        report.notes.append("the server's process could not be found: RSS not measured (pass pid)")
    elif fill:
        report.fill_s, report.fill_tokens, report.rss_before_fill, _, fill_errors = fill_kv(
            url, pid, min(clients, 4), fill_seconds, max(timeout, 300))
        report.errors += [f"--fill-kv: {e}" for e in fill_errors]
    report.rss_start = rss_of(pid) if pid is not None else None
    run = _Run(clients, seconds, max_requests or max(clients, int(clients * seconds * 10)), warmup * seconds)
    sampler = threading.Thread(target=_sampler, args=(pid, run, report), name="soak-rss", daemon=True)
    sampler.start()
    threads = [threading.Thread(target=_client, args=(url, run, i, turns, max_tokens, timeout),
                                name=f"soak-client-{i}", daemon=True) for i in range(clients)]
    try:
        for t in threads:
            t.start()
        hard_end = run.deadline + timeout + 10  # a request in flight at the deadline may still finish
        for t in threads:
            t.join(max(0.0, hard_end - time.monotonic()))
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:
            report.errors.append(f"still running after {seconds:g} s + {timeout:g} s: {', '.join(stuck)}")
    finally:
        run.stop.set()
        sampler.join(5)
    report.wall_s = run.elapsed()
    if pid is not None:
        report.rss_end = rss_of(pid)
        if report.rss_end is None:
            report.errors.append("the server process ended during the soak")
        else:
            report.rss_timeline.append((round(report.wall_s, 2), report.rss_end))
    if report.rss_timeline:
        report.rss_peak = max(rss for _, rss in report.rss_timeline)
    growth = report.rss_growth_pct
    if not fill and growth is not None and growth >= MAX_RSS_GROWTH_PCT:
        report.notes.append("without --fill-kv the engine's KV-cache pool, reserved at load, becomes resident "
                            "during the soak (see this script's docstring): a soak with --fill-kv tells the rest")
    if pid is not None and report.rss_warm is None and report.rss_end is not None:
        report.notes.append("the warm-up never ended (a client did not finish its first chat in time): "
                            "RSS growth not measured; run longer")
    tally(report, list(run.results))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--model", default="smollm2-135m-embedded", help="the app's --model (when it starts it)")
    parser.add_argument("--url", help="a running app on loopback instead of starting one")
    parser.add_argument("--pid", type=int, help="with --url: the server's process (else found from the port)")
    parser.add_argument("--turns", type=int, default=5, help="questions in a chat before a new one starts")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--max-requests", type=int, help="at most this many requests (default clients x seconds x 10)")
    parser.add_argument("--warmup", type=float, default=0.25, help="the least fraction of the time for warm-up")
    parser.add_argument("--fill-kv", action="store_true", help="make the engine's KV pool resident first")
    parser.add_argument("--fill-seconds", type=float, default=300, help="at most this long for --fill-kv")
    parser.add_argument("--timeline", action="store_true", help="print the RSS samples too")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0 or args.turns < 1 or args.max_tokens < 1:
        parser.error("--clients, --seconds, --turns and --max-tokens must be positive")
    # SIGTERM ends the script the way Ctrl-C does: through the `finally` that stops the app
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    from models.settings import load_settings
    from tools.live_app import start_app

    home = load_settings().home  # the user's own app home: the embedded model is cached there

    app = None
    try:
        url, pid = args.url, args.pid
        if url is None:
            if args.model == "smollm2-135m-embedded":
                _ensure_embedded(home)
            app = start_app("--offline", "--model", args.model, home=home)
            url, pid = app.url, app.proc.pid
            print(f"app started: {url} (pid {pid})", flush=True)
        report = soak(url, args.clients, args.seconds, pid=pid, turns=args.turns, max_tokens=args.max_tokens,
                      max_requests=args.max_requests, warmup=args.warmup, fill=args.fill_kv,
                      fill_seconds=args.fill_seconds)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ValueError as err:  # a URL that is not on loopback
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        if app is not None:
            code = app.stop()
            if code != 0 or "Traceback" in "".join(app.lines):
                print(f"the app ended with {code}:\n" + "".join(app.lines[-40:]), file=sys.stderr)
    if args.timeline:
        print("RSS timeline (s:MiB): " + " ".join(f"{t:.0f}:{rss / 2**20:.0f}" for t, rss in report.rss_timeline[::4]))
    print(report.text())
    return 0 if report.ok else 1


def _ensure_embedded(home: Path) -> None:
    """The embedded model in the user's app home (fetched once, as the app does, if it is not there yet)."""
    from models.catalog import embedded_default, load_catalog
    from models.settings import load_settings
    from models.store import fetch_embedded

    fetch_embedded(embedded_default(load_catalog()), load_settings(home=home))


if __name__ == "__main__":
    sys.exit(main())
