"""OpenVINO GenAI with continuous batching: N generations at once on CPU or GPU.N (not the NPU: static shapes,
batch 1), through `ContinuousBatchingPipeline`, for OpenVINO IR folders and GGUF files (read through the IR
OpenVINO GenAI writes beside the GGUF).

Concurrency (who owns what):
- The scheduler thread ("openvino-batching") owns the pipeline and every GenerationHandle: it alone calls
  add_request, step, read and handle.cancel. Nothing else touches them.
- `_cond` guards `_inbox` (requests handed over, not yet added) and `_closing`. A caller thread puts its
  request there and wakes the scheduler; after that the request's `out` queue is the only channel back
  ((token ids, their log-probabilities) per read, then an error or _END).
- Stop / a closed tab: the reply's own cancel event (`reply.cancel()`, `reply.close()`) is the request's
  `cancel`; the scheduler sees it before its next step, cancels that handle only and ends that request.
  The caller that stops early waits (bounded) until the scheduler has done so.
- `engine.cancel()` sets every running reply's event (base.Engine); a switch waits for answers to end.
- `close()`: the scheduler cancels whatever is still running, ends every request and exits; then the
  pipeline is dropped.
- A JSON schema (Sampling.response_format) is compiled by xgrammar in the step that first samples its request;
  a schema it rejects fails that step for every request in it and leaves the pipeline broken for good
  (OpenVINO GenAI 2026.4: the step API does not drop its requests on an error; generate() does). So a schema
  this engine has not run yet is tried first with generate() and one token, by the scheduler, while no other
  request is in the pipeline: requests that arrive behind it wait (`held`, scheduler-only) until the running
  ones end; a schema that fails is that request's 400 and nobody else's. `_schemas_ok` (scheduler-only)
  remembers the schemas that compiled.
Detokenising, stop strings and figures are per request, in the caller's thread.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EngineLoadError
from .assisted import assistance, settle_json, structured_output_with
from .base import Engine, EngineSpec, Message, Reply, ReplyStats, StopFilter, engine_words, finish_reason
from .kv_cache import cache_gb, kv_bytes_per_token, kv_value_bytes
from .openvino_genai import (
    PROBE,
    _available_devices,
    control_tokens_of,
    device_missing,
    generation_config,
    model_defaults,
    pipeline_config,
    prompt_ids,
    schema_rejected,
)
from .sampling import Sampling

_END = object()
CANCEL_WAIT_S = 5.0  # a caller that stops early waits this long at most for the scheduler to drop its request
CALLERS_READ_S = 0.002  # before a step, the callers get this long at most to take the tokens of the last one
MAX_KNOWN_SCHEMAS = 256  # schemas remembered as compiling; more and the memory starts afresh


def let_callers_read(requests, limit_s: float | None = None) -> bool:
    """Before a step: yield the CPU, for `limit_s` at most, until every caller has taken its tokens of the last
    step, and a caller with its first tokens is back waiting for more (its first text shown or sent); True when
    they all were. A step keeps every core busy with OpenVINO's threads: a caller that handles its tokens during
    one takes a core from one of them, the whole step waits for that straggler, and the text reaches the user a
    step late. Waiting for the first tokens' whole way out puts the API's first token within a few ms of the
    engine's; waiting for every token's would cost decode speed (measured here, 2 cores, one API stream with its
    client in the same process, medians of 6: first token +2 to +10 ms over the raw pipeline this way, +16 to
    +19 ms when only the queues are waited for; tokens/s about 0.9 of raw either way, 0.83 waiting for all)."""
    deadline = time.perf_counter() + (CALLERS_READ_S if limit_s is None else limit_s)
    while any(not r.out.empty() or (r.taken == 1 and not r.waiting) for r in requests):
        if time.perf_counter() >= deadline:
            return False
        time.sleep(0)  # lets the callers' threads run
    return True


@dataclass(eq=False)
class _Request:
    ids: object  # ov.Tensor [1, prompt length]
    config: object  # GenerationConfig
    cancel: threading.Event
    sampling: Sampling = field(default_factory=Sampling)
    out: queue.Queue = field(default_factory=queue.Queue)
    ended: threading.Event = field(default_factory=threading.Event)
    handle: object = None
    cancelled: bool = False
    waiting: bool = False  # its caller is blocked on `out` for the next tokens (set and read without a lock)
    taken: int = 0  # items its caller took from `out`


class BatchingOpenVinoEngine(Engine):
    name = "OpenVINO GenAI"
    structured_output = True
    penalties = True
    reports_logprobs = True

    def __init__(self, spec: EngineSpec):
        self.max_parallel = max(1, int(spec.parallel))
        super().__init__(spec)
        import openvino_genai as ov_genai

        self._ov = ov_genai
        self._config = pipeline_config(spec.device, spec.context_length, spec.cache_dir)
        self.assist, note = assistance(spec)
        if note:
            self.notices.append(note)
        self.structured_output, self.structured_output_note = structured_output_with(self.assist)
        self._cond = threading.Condition()
        self._inbox: list[_Request] = []
        self._closing = False
        self._ids = itertools.count(1)  # generate() (the schema check) numbers its own requests from 0
        self._schemas_ok: set[str] = set()
        self._pipe = None
        try:
            folder = self._ir_folder(Path(spec.path))
            self.assist, json_note = settle_json(self.assist, folder)  # a draft and JSON answers: see assisted.py
            if json_note and self.assist is None:  # the draft gave way
                self.notices.append(json_note)
            self.structured_output, self.structured_output_note = structured_output_with(self.assist)
            try:
                self._start(folder)
                if json_note and self.assist is not None:  # the forced draft runs: JSON answers are refused
                    self.notices.append(json_note)
            except Exception as err:  # noqa: BLE001 - a draft (or prompt lookup) that fails costs only itself
                if self.assist is None:
                    raise
                self.notices.append(f"{self.assist.what} could not be used ({engine_words(err, 200)}): the model "
                                    "answers without it.")
                self._stop_scheduler()
                self.assist = None
                self.structured_output, self.structured_output_note = structured_output_with(self.assist)
                self._start(folder)
        except Exception as err:  # noqa: BLE001 - compile, driver and file errors all arrive as RuntimeError
            self.close()
            missing = spec.device.upper() != "CPU" and device_missing(spec.device, _available_devices())
            raise EngineLoadError(
                f"OpenVINO GenAI could not load {spec.label} on {spec.device} for {self.max_parallel} "
                f"requests at once: {engine_words(err)}"
                + (f" ({spec.device} is not among OpenVINO's devices here: its driver is missing)" if missing else ""),
                scope="device" if missing else "artifact") from err

    def _start(self, folder: Path) -> None:
        """Size the KV-cache pool (the draft's share too: the pipeline splits the pool between the two models),
        open the pipeline, start the scheduler and warm up."""
        value_bytes = kv_value_bytes(self.spec.device, self._config)
        kv = kv_bytes_per_token(folder / "openvino_model.xml", value_bytes)
        if self.assist is not None and self.assist.kind == "draft":
            kv += kv_bytes_per_token(Path(self.assist.draft_path) / "openvino_model.xml", value_bytes)
        self.cache_gb = cache_gb(self.spec.context_length, self.max_parallel, kv)
        self._pipe = self._open(folder)
        self._tokenizer = self._pipe.get_tokenizer()
        with self._cond:
            self._closing = False
        self._scheduler = threading.Thread(target=self._loop, name="openvino-batching", daemon=True)
        self._scheduler.start()
        self._warm_up()  # a device that compiles but fails its first inference fails here, at load

    def _stop_scheduler(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        scheduler = getattr(self, "_scheduler", None)
        if scheduler is not None and scheduler is not threading.current_thread():
            scheduler.join(CANCEL_WAIT_S)
        self._scheduler = None
        self._pipe = None

    # -- loading ----------------------------------------------------------------------------
    def _ir_folder(self, path: Path) -> Path:
        """An IR folder as it is; for a GGUF, the IR OpenVINO GenAI writes beside it (written first if missing)."""
        if path.suffix.lower() != ".gguf":
            return path
        if not (path.parent / "openvino_model.xml").is_file():
            plain = {k: v for k, v in self._config.items() if k != "CACHE_DIR"}
            self._ov.LLMPipeline(str(path), "CPU", enable_save_ov_model=True, **plain)  # writes the IR, then freed
        return path.parent

    def _scheduler_config(self):
        config = self._ov.SchedulerConfig()
        config.cache_size = self.cache_gb
        config.enable_prefix_caching = True  # a chat's next turn reuses its earlier turns' KV blocks
        config.max_num_seqs = self.max_parallel
        config.dynamic_split_fuse = True
        return config

    def _open(self, folder: Path):
        make = self._ov.ContinuousBatchingPipeline
        extra = self.assist.properties(self._ov, self.spec.device, self._config) if self.assist else {}
        try:
            return make(str(folder), self._scheduler_config(), self.spec.device, {**self._config, **extra})
        except Exception as err:  # noqa: BLE001 - retried once without the compiled-model cache
            if "CACHE_DIR" not in self._config:
                raise
            plain = {k: v for k, v in self._config.items() if k != "CACHE_DIR"}
            if extra:
                extra = self.assist.properties(self._ov, self.spec.device, plain)
            pipe = make(str(folder), self._scheduler_config(), self.spec.device, {**plain, **extra})
            self.notices.append(f"OpenVINO could not write its compiled-model cache ({engine_words(err, 160)}): "
                                "the model runs without it and loads more slowly.")
            return pipe

    def _warm_up(self) -> None:
        """The first steps pay one-off costs; pay them at load, not on the first user."""
        reply = Reply(iter(()))
        for _ in self._generate([{"role": "user", "content": "Hi"}], Sampling(max_new_tokens=2), reply):
            pass

    # -- the scheduler thread -----------------------------------------------------------------
    def _loop(self) -> None:
        active: dict[int, _Request] = {}
        held: list[_Request] = []  # behind a schema that must be tried alone first
        while True:
            with self._cond:
                while not self._inbox and not active and not held and not self._closing:
                    self._cond.wait()
                incoming, self._inbox = self._inbox, []
                closing = self._closing
            if closing:
                for req in list(active.values()) + held + incoming:
                    if req.handle is not None:
                        req.handle.cancel()
                    req.cancelled = True
                    self._end(req, _END)
                return
            waiting, held = held + incoming, []
            for req in waiting:
                if req.cancel.is_set():
                    req.cancelled = True
                    self._end(req, _END)
                elif held or (self._untried_schema(req) and active):
                    held.append(req)  # in arrival order, behind the first one that waits
                else:
                    self._admit(req, active)
            for key, req in list(active.items()):
                if req.cancel.is_set():
                    req.handle.cancel()  # this request only; no read after cancel
                    req.cancelled = True
                    self._end(req, _END)
                    del active[key]
            if not active:
                continue
            try:
                if self._pipe.has_non_finished_requests():
                    let_callers_read(active.values())
                    self._pipe.step()
                for key, req in list(active.items()):
                    self._read(req)
                    status = req.handle.get_status()
                    if status == self._ov.GenerationStatus.IGNORED:  # did not fit the KV-cache pool
                        self._end(req, RuntimeError(f"the request did not fit the {self.cache_gb} GB KV cache"))
                        del active[key]
                    elif status != self._ov.GenerationStatus.RUNNING and not req.handle.can_read():
                        self._end(req, _END)
                        del active[key]
            except Exception as err:  # noqa: BLE001 - a failed step fails every request in it
                for req in active.values():
                    self._end(req, err)
                active.clear()

    def _untried_schema(self, req: _Request) -> bool:
        fmt = req.sampling.response_format
        return fmt is not None and fmt.schema not in self._schemas_ok

    def _admit(self, req: _Request, active: dict[int, _Request]) -> None:
        """Into the pipeline (the scheduler thread; an untried schema only when `active` is empty)."""
        try:
            if self._untried_schema(req):
                rejected = schema_rejected(req.sampling.response_format, self._generate_one)
                if rejected is not None:
                    self._end(req, rejected)
                    return
                if len(self._schemas_ok) >= MAX_KNOWN_SCHEMAS:
                    self._schemas_ok.clear()
                self._schemas_ok.add(req.sampling.response_format.schema)
            req.handle = self._pipe.add_request(next(self._ids), req.ids, req.config)
            active[id(req)] = req
        except Exception as err:  # noqa: BLE001 - this request's own error, raised in its caller
            self._end(req, err)

    def _generate_one(self, sampling: Sampling):
        """generate() on PROBE, alone in the pipeline: on an error it drops its requests and the pipeline
        goes on (step() does not)."""
        return self._pipe.generate([self._prompt_ids(PROBE)], [self._generation_config(sampling)])

    def _read(self, req: _Request) -> None:
        while req.handle.can_read():
            for output in req.handle.read().values():
                if output.generated_ids:
                    req.out.put((list(output.generated_ids), list(output.generated_log_probs)))

    @staticmethod
    def _end(req: _Request, last) -> None:
        req.out.put(last)
        req.ended.set()

    # -- one request, in the caller's thread -------------------------------------------------------
    def _prompt_ids(self, messages: list[Message]):
        return prompt_ids(self._ov, self._tokenizer, messages)

    def control_tokens(self) -> tuple[str, ...]:
        return control_tokens_of(self._tokenizer)

    def count_tokens(self, messages: list[Message]) -> int:
        return int(self._prompt_ids(messages).shape[1])

    def _generation_config(self, sampling: Sampling):
        return generation_config(self._pipe.get_config(), sampling, self.assist)

    @property
    def defaults(self) -> Sampling:
        return model_defaults(self._pipe.get_config())

    def _submit(self, req: _Request) -> None:
        with self._cond:
            if self._closing:
                raise RuntimeError("the engine is closed")
            self._inbox.append(req)
            self._cond.notify()

    @staticmethod
    def _next(req: _Request):
        req.waiting = True  # after its first tokens, the scheduler waits (briefly) for this before its next step
        try:
            return req.out.get()
        finally:
            req.taken += 1
            req.waiting = False

    def _generate(self, messages: list[Message], sampling: Sampling, reply: Reply) -> Iterator[str]:
        ids = self._prompt_ids(messages)
        req = _Request(ids, self._generation_config(sampling), reply._cancel, sampling)
        stops = StopFilter(sampling.stop)  # the engine stops at them; this keeps any part of one from showing
        tokens: list[int] = []
        steps = 0  # reads with tokens: one per step of the model that produced some for this request
        shown = ""
        started = time.perf_counter()
        first = last = None
        self._submit(req)
        try:
            while (item := self._next(req)) is not _END:
                if isinstance(item, BaseException):
                    raise item
                now = time.perf_counter()
                first = first or now
                last = now
                new_ids, log_probs = item
                tokens += new_ids
                steps += 1
                if sampling.logprobs:  # the answer's tokens (the end-of-answer token, special, is not text)
                    pieces = [(self._tokenizer.decode([i], skip_special_tokens=True), float(p))
                              for i, p in zip(new_ids, log_probs, strict=False)]
                    reply.logprobs += [(t, p) for t, p in pieces if t]
                text = self._tokenizer.decode(tokens, skip_special_tokens=True)
                if text.endswith("\ufffd"):  # an incomplete UTF-8 sequence: wait for the rest of it
                    continue
                delta, shown = text[len(shown):], text
                piece = stops.feed(delta)
                if piece:
                    yield piece
                if stops.hit:
                    req.cancel.set()
                    break
            rest = stops.flush()
            if rest:
                yield rest
        finally:
            if not req.ended.is_set():  # stopped early (Stop, a closed tab, a stop string): drop it in the engine
                req.cancel.set()
                with self._cond:
                    self._cond.notify()
                req.ended.wait(CANCEL_WAIT_S)
        total = time.perf_counter() - started
        n = len(tokens)
        ttft = (first - started) if first else 0.0
        cancelled = req.cancelled and not stops.hit
        reply.stats = ReplyStats(
            device=self.spec.device, model=self.spec.label, ttft_s=ttft,
            tokens_per_s=(n - 1) / (last - first) if n > 1 and last > first else 0.0,
            prompt_tokens=int(ids.shape[1]), generated_tokens=n,
            finish_reason=finish_reason(cancelled, n, sampling), total_s=total,
            # the step API's handles report plain PerfMetrics: no acceptance rate for the draft per answer, only a
            # lower bound of it from the tokens and steps seen here (models/engines/assisted.py)
            tokens_per_step=n / steps if self.assist is not None and steps else None,
        )
        note = self.assist.notice(reply.stats, self.assist.accepted_at_least(n, steps)) if self.assist else None
        if note:
            reply.notices.append(note)

    def close(self) -> None:
        self._stop_scheduler()
