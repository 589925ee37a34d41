"""The engine seam: every engine streams a chat reply the same way.

    engine = load(spec)                     # models.engines.load
    reply = engine.stream(messages, Sampling(max_new_tokens=128))
    for delta in reply: print(delta, end="")
    reply.stats.tokens_per_s

An engine runs up to `max_parallel` generations at once (1 for most adapters; the continuous-batching
OpenVINO engine N). Concurrency: `_slots` (a bounded semaphore of max_parallel) is the one gate: a generation
holds one while it runs. A caller of its own (`stream`) waits for one when its generation starts; the serving
queue (app/serving.py) takes one with `admit()` for the head of its line, streams with `admitted=True` and gives it
back with `dismiss()`. `_running` (under `_lock`) are the replies running now. Each reply owns its cancel event: `reply.cancel()` (Stop) or closing a reply
early (a UI that stops iterating, a closed tab) stops that generation inside the engine and no other;
`engine.cancel()` stops every running generation (shutdown, a switch). Whatever an engine raises while answering
reaches the caller as the app's own `EngineError` (or another `AppError`), never as a bare
RuntimeError; the deltas already yielded stay with the caller.
"""

from __future__ import annotations

import contextlib
import queue
import re
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import AppError, EngineError, InvalidSampling, InvalidText, check_text
from .context import Budget, Message, fit_messages
from .control_tokens import Neutralizer
from .sampling import MAX_SEED, ResponseFormatError, Sampling


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
    # Assisted decoding (speculative, prompt lookup; models/engines/assisted.py): tokens per step of the model, and
    # the share of the draft's proposed tokens the model accepted, when the engine reports it. None otherwise.
    tokens_per_step: float | None = None
    draft_acceptance: float | None = None

    def line(self) -> str:
        return (f"{self.device} · {self.model} · first token {self.ttft_s:.2f} s · "
                f"{self.tokens_per_s:.1f} tokens/s · {self.generated_tokens} tokens")


@dataclass(frozen=True)
class EngineSpec:
    """What to load: a path, the engine that reads it and the device to run it on."""

    path: str
    engine: str  # an id of models/engines/registry.py
    device: str  # the engine's own device id: "CPU", "GPU.0", "NPU", "dml:0", "cpu"
    label: str  # shown to the user
    precision: str = ""
    context_length: int = 4096
    cache_dir: str | None = None
    options: dict = field(default_factory=dict)  # the adapter's own: a draft, prompt lookup, keeping a GGUF's IR
    device_kind: str = ""  # cpu | gpu | npu | dml ("" -> told from `device` once, here)
    parallel: int = 1  # answers at once (only an engine that batches on this device kind runs more than one)

    def __post_init__(self) -> None:
        if not self.device_kind:
            kind = self.device.split(".", 1)[0].split(":", 1)[0].lower()
            object.__setattr__(self, "device_kind", kind if kind in ("cpu", "gpu", "npu", "dml") else "cpu")


RAW_ROLE = "prompt"  # a raw prompt (/v1/completions): the model continues this text, no chat template around it


def raw_prompt(text: str) -> list[Message]:
    """Messages that stand for a raw prompt: every engine continues `text` as it is (with the tokenizer's BOS)."""
    return [{"role": RAW_ROLE, "content": text}]


def raw_text(messages: list[Message]) -> str | None:
    """The raw prompt these messages stand for, or None for a chat."""
    if len(messages) == 1 and messages[0]["role"] == RAW_ROLE:
        return str(messages[0]["content"])
    return None


class Reply:
    """Iterating streams text deltas; `text()` waits for the whole reply; `stats` when done."""

    def __init__(self, deltas: Iterator[str]):
        self._deltas = deltas
        self._parts: list[str] = []
        self.stats: ReplyStats | None = None
        self.notices: list[str] = []  # e.g. "older turns were left out to fit the context"
        self.seed: int | None = None  # the seed a sampled answer used (repeat it with Sampling(seed=...))
        self.logprobs: list[tuple[str, float]] = []  # (token, log-probability) per token, when asked and reported
        self._cancel = threading.Event()  # this generation's own Stop (cancel, close, engine.cancel); adapters read it

    def cancel(self) -> None:
        """Stop this generation inside the engine (from any thread); other generations go on."""
        self._cancel.set()

    def __iter__(self) -> Iterator[str]:
        for delta in self._deltas:
            self._parts.append(delta)
            yield delta

    def text(self) -> str:
        for _ in self:
            pass
        return "".join(self._parts)

    def close(self) -> None:
        """Stop early: the engine stops generating (this generation only)."""
        self._cancel.set()
        close = getattr(self._deltas, "close", None)
        if close:
            try:
                close()
            except ValueError:  # being iterated in another thread right now: the event stops it there
                pass


_DONE = object()


def pushed(run: Callable[[Callable[[str], bool]], Any], cancel: threading.Event,
           name: str = "engine-generate") -> Generator[str, None, Any]:
    """Push to pull, in one place: `run(emit)` runs in one worker thread and calls `emit(text)` for
    each piece (emit returns True once the producer should stop); this generator yields the pieces
    and returns what `run` returned. A consumer that stops early sets `cancel` and waits for the
    worker; an error in the worker is raised here, after the worker has ended."""
    chunks: queue.Queue = queue.Queue()
    outcome: dict = {}

    def emit(text: str) -> bool:
        chunks.put(text)
        return cancel.is_set()

    def work() -> None:
        try:
            outcome["result"] = run(emit)
        except BaseException as err:  # noqa: BLE001 - re-raised in the consumer
            outcome["error"] = err
        finally:
            chunks.put(_DONE)

    worker = threading.Thread(target=work, name=name, daemon=True)
    worker.start()
    drained = False
    try:
        while (item := chunks.get()) is not _DONE:
            if item:
                yield item
        drained = True
    finally:
        if not drained:
            cancel.set()  # a consumer that stops early (Stop button, closed tab) stops the engine
        worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


class StopFilter:
    """Stop strings for engines that do not handle them: text that could be the start of a stop
    string is held back until it is clear, so no part of a stop string is ever shown."""

    def __init__(self, stops: tuple[str, ...]):
        self._stops = tuple(s for s in stops if s)
        self._held = ""
        self.hit = False

    def feed(self, text: str) -> str:
        """The text safe to show now; after a stop string, `hit` is set and the rest is dropped."""
        if self.hit:
            return ""
        buf = self._held + text
        cuts = [i for s in self._stops if (i := buf.find(s)) >= 0]
        if cuts:
            self.hit, self._held = True, ""
            return buf[:min(cuts)]
        keep = max((n for s in self._stops for n in range(min(len(s) - 1, len(buf)), 0, -1)
                    if buf.endswith(s[:n])), default=0)
        self._held = buf[len(buf) - keep:] if keep else ""
        return buf[:len(buf) - keep]

    def flush(self) -> str:
        out, self._held = self._held, ""
        return "" if self.hit else out


_LOCATION = re.compile(r"^\[[\d:]+\] \S+\.(?:cc|cpp|h|hpp):\d+: ")  # xgrammar's "[12:45:18] /src/x.cc:898: "


def engine_words(err: BaseException, limit: int = 400) -> str:
    """An engine's error on one line. OpenVINO prefixes its messages with source locations
    ("Exception from src/...cpp:123:"): keep the lines that say something."""
    lines = [_LOCATION.sub("", ln.strip()) for ln in str(err).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not re.match(r"^(Exception from|Check ')", ln)] or lines
    return " ".join(useful)[:limit] or type(err).__name__


class Engine(ABC):
    name: str = "engine"
    max_parallel: int = 1  # generations this engine runs at once (set before Engine.__init__ to change it)
    structured_output: bool = False  # can hold an answer to a JSON schema (Sampling.response_format)
    structured_output_note: str = ""  # why not, when it is this engine's setup rather than the engine kind
    penalties: bool = False  # applies Sampling.frequency_penalty and presence_penalty
    reports_logprobs: bool = False  # fills Reply.logprobs when Sampling.logprobs asks

    def __init__(self, spec: EngineSpec):
        self.spec = spec
        self._slots = threading.BoundedSemaphore(self.max_parallel)
        self._lock = threading.Lock()
        self._running: set[Reply] = set()
        self.notices: list[str] = []  # what the user should know about how it loaded
        self._neutralizer: Neutralizer | None = None

    @property
    def neutralizer(self) -> Neutralizer:
        """Breaks this model's control tokens in people's text (`control_tokens()`, read once)."""
        if self._neutralizer is None:
            try:
                tokens = self.control_tokens()
            except Exception:  # noqa: BLE001 - a tokenizer that cannot list them: the common shapes still hold
                tokens = ()
            self._neutralizer = Neutralizer(tokens)
        return self._neutralizer

    def control_tokens(self) -> tuple[str, ...]:
        """The model's own control tokens, from its tokenizer; an adapter that can list them says so."""
        return ()

    @property
    def device(self) -> str:
        return self.spec.device

    @property
    def budget(self) -> Budget:
        """The window this engine holds: the spec's, unless the engine knows a smaller one."""
        return Budget(self.spec.context_length)

    def admit(self) -> bool:
        """Take one of the engine's `max_parallel` slots now, if one is free: the one gate for what runs. A caller
        that was admitted streams with `admitted=True` and gives the slot back with `dismiss()`."""
        return self._slots.acquire(blocking=False)

    def dismiss(self) -> None:
        self._slots.release()

    def stream(self, messages: list[Message], sampling: Sampling = Sampling(), admitted: bool = False) -> Reply:
        """A reply streaming the answer. Without `admitted` the generation waits for a slot itself when it starts
        (a caller of its own: --ask, the benchmark); the serving queue admits first (app/serving.py)."""
        for m in messages:  # before the engine: its tokenizer and chat history raise on such text
            check_text(f"a {m['role']} message", str(m["content"]), "messages")
        reply = Reply(iter(()))
        # a raw prompt is the client's whole text, special tokens meant (a fill-in-the-middle prompt): kept as sent
        text = messages if raw_text(messages) is not None else self.neutralizer.messages(messages)
        reply._deltas = self._serialised(text, sampling, reply, admitted)
        return reply

    def _serialised(self, messages: list[Message], sampling: Sampling, reply: Reply,
                    admitted: bool) -> Iterator[str]:
        with contextlib.nullcontext() if admitted else self._slots:  # at most max_parallel; others wait here
            with self._lock:
                self._running.add(reply)
            try:
                yield from self._answer(messages, sampling, reply)
            finally:
                with self._lock:
                    self._running.discard(reply)

    def _answer(self, messages: list[Message], sampling: Sampling, reply: Reply) -> Iterator[str]:
        if sampling.response_format is not None and not self.structured_output:
            raise ResponseFormatError(
                f"{self.name} cannot hold an answer to a JSON schema (response_format)"
                + (f" {self.structured_output_note}" if self.structured_output_note else "; ask without "
                   "response_format, or run a model on OpenVINO GenAI or ONNX Runtime GenAI"))
        if sampling.logprobs and not self.reports_logprobs:
            raise InvalidSampling(f"logprobs: {self.name} does not report log-probabilities here (OpenVINO GenAI's "
                                  "batching engine, the CPU and GPU default, does); ask without logprobs", "logprobs")
        if not self.penalties:
            for name in ("frequency_penalty", "presence_penalty"):
                if getattr(sampling, name):
                    raise InvalidSampling(f"{name}: {self.name} has no {name.replace('_', ' ')} (send 0, or leave it "
                                          "out; repetition is held back by the model's own repetition penalty)", name)
        budget = self.budget
        try:  # the model's chat template runs here first: one that rejects these messages is the asker's error
            messages, notice, prompt_tokens = fit_messages(messages, self.count_tokens, budget,
                                                           sampling.max_new_tokens)
        except AppError:
            raise
        except Exception as err:  # noqa: BLE001 - a template's raise_exception, a role it does not know
            raise InvalidText(f"this model's chat template does not take these messages: {engine_words(err)}. "
                              "Change the roles or their order (some templates take no system message, or only "
                              "alternating user and assistant turns)", "messages") from err
        if notice:
            reply.notices.append(notice)
        answer = budget.answer_tokens(prompt_tokens, sampling.max_new_tokens)
        if answer < sampling.max_new_tokens:
            sampling = replace(sampling, max_new_tokens=answer)
            reply.notices.append(f"The answer could be at most {answer} tokens: the chat fills the rest "
                                 f"of the {budget.window}-token window.")
        if not sampling.greedy and sampling.seed is None:
            sampling = replace(sampling, seed=secrets.randbelow(MAX_SEED))  # sampled answers differ
        reply.seed = None if sampling.greedy else sampling.seed
        try:
            yield from self._generate(messages, sampling, reply)
        except AppError:
            raise
        except Exception as err:  # noqa: BLE001 - any engine's own error becomes the app's, with its words
            raise EngineError(f"{self.name} failed while answering on {self.device}: {engine_words(err)}. "
                              "Ask again; if it happens every time, switch to another model or device.") \
                from err

    def cancel(self) -> None:
        """Stop every running generation."""
        with self._lock:
            running = list(self._running)
        for reply in running:
            reply.cancel()

    @property
    def _cancel(self) -> threading.Event:
        """The running reply's own event, for engines that run one generation at a time (the tests' fakes);
        adapters read `reply._cancel` of the reply they answer."""
        with self._lock:
            running = list(self._running)
        return running[0]._cancel if len(running) == 1 else threading.Event()

    @abstractmethod
    def count_tokens(self, messages: list[Message]) -> int:
        """Prompt length of these messages with the model's own chat template."""

    @abstractmethod
    def _generate(self, messages: list[Message], sampling: Sampling, reply: Reply) -> Iterator[str]:
        """Yield deltas for messages that fit the budget (sampling.max_new_tokens already fits the window
        and a sampled request always has a seed); set reply.stats before returning; stop soon after
        reply._cancel is set."""

    def close(self) -> None:  # noqa: B027 - engines without resources need nothing
        pass


def finish_reason(cancelled: bool, generated: int, sampling: Sampling) -> str:
    if generated >= sampling.max_new_tokens:
        return "length"
    return "cancelled" if cancelled else "stop"
