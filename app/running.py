"""The running model: one object owns it, with one lock.

    running = RunningModel(loaded, queue, context)
    running.current()                         # the Loaded being served now (engine, candidate, ranking, notices)
    running.switch(Preference(device="npu"), progress)   # -> the new Loaded, or AppError with the old one kept
    running.close()                           # at exit: the engine running now is closed

What each moment does:
- **A switch** ranks again with the memory free now plus what the running model gives back, fetches the new first
  choice (`progress` gets the download's progress), and loads it. When the two do not fit side by side, the running
  model is unloaded first (the serving queue lets the answer running now end, then holds the engine alone); when the
  new one then fails, the old one is loaded back and the error says what still runs. One switch at a time: a second
  waits for the first. Meanwhile questions wait in the serving queue with a line that says what the switch is doing
  (`tell`), and are answered by the new model.
- **Stop during a switch**: Stop stops its own tab's answer or takes its question out of the line; it does not stop
  the switch (a download or a compile ends on its own, and then the chat goes on with the new model).
- **A closed tab**: its waiting question leaves the line and its answer stops in the engine (the serving queue);
  a switch it started goes on, so the next person finds the model it asked for.
- **Shutdown** (`close`): the engine running now, whichever a switch left, is closed after its answers end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from capabilities import MachineProfile
from models import store
from models.catalog import Artifact
from models.engines import load
from models.errors import AppError
from models.policy import Candidate, Measured, Preference, Ranking, rank, required_bytes
from models.settings import Settings
from models.startup import Loaded, StepLog, availability, spec_for, start

from .serving import ServingQueue


@dataclass(frozen=True)
class Context:
    """What a switch ranks against: the machine, the catalog, the settings, and the speeds measured so far."""

    profile: MachineProfile
    catalog: tuple[Artifact, ...]
    settings: Settings
    recorded: bool = False  # a recorded profile (--probe-file): its memory, as recorded, not this machine's
    measured: Callable[[], Measured] = Measured  # read anew at each switch: a --bench run since counts
    log: StepLog = lambda *_: None
    reach: tuple[bool, str] | None = None  # the hub's reachability, once: a dropdown must not wait

    def available_now(self) -> int:
        if self.recorded:
            return self.profile.memory.available_bytes
        import psutil

        return int(psutil.virtual_memory().available)


class RunningModel:
    """Owns the Loaded being served; `_lock` guards it (read by API worker threads, written by a switch);
    `_switching` lets one switch run at a time."""

    def __init__(self, loaded: Loaded, queue: ServingQueue, context: Context):
        self._loaded = loaded
        self._queue = queue
        self._context = replace(context, reach=context.reach or store.hub_reachable(context.settings))
        self._lock = threading.Lock()
        self._switching = threading.Lock()

    @property
    def queue(self) -> ServingQueue:
        return self._queue

    def current(self) -> Loaded:
        with self._lock:
            return self._loaded

    def model_choices(self) -> tuple[tuple[str, str], ...]:
        """(label, id) for a model picker: "auto", then every model of the catalog with its download size."""
        return (("auto: let the app choose", "auto"),) + tuple(
            (f"{a.name} ({a.download_bytes / 1e9:.1f} GB)" if a.download_bytes else a.name, a.id)
            for a in self._context.catalog)

    def catalog_ids(self) -> list[str]:
        """Every model the page could switch to (the API names them in a 404 with how to switch; it never switches)."""
        return [a.id for a in self._context.catalog]

    def explain(self, pref: Preference) -> Ranking:
        """What a switch to `pref` would choose now, without loading anything."""
        ctx = self._context
        return rank(ctx.profile, ctx.catalog, pref, availability(ctx.catalog, ctx.settings, ctx.reach),
                    ctx.measured())

    def tell(self, what: str) -> None:
        """What a switch is doing, for the questions waiting in the serving queue."""
        self._queue.begin_switch(what)

    def switch(self, pref: Preference, progress: store.ProgressCallback | None = None) -> Loaded:
        """Load the first choice for `pref` in place of the running model (see the module docstring)."""
        with self._switching:
            self._queue.begin_switch("switching models")
            try:
                return self._switch(pref, progress)
            finally:
                self._queue.end_switch()

    def _switch(self, pref: Preference, progress: store.ProgressCallback | None) -> Loaded:
        ctx, old = self._context, self.current()
        held = required_bytes(old.artifact, old.candidate.context_length)
        now = replace(ctx.profile, memory=replace(ctx.profile.memory, available_bytes=ctx.available_now() + held))

        def before_load(candidate: Candidate) -> str | None:
            need = required_bytes(candidate.artifact, candidate.context_length)
            if self._queue.engine is None or need <= ctx.available_now():
                return None
            self._queue.release()
            return (f"Unloaded {old.candidate.label} first: it and {candidate.label} do not both fit in memory "
                    "(the chat was kept).")

        try:
            loaded = start(now, ctx.catalog, ctx.settings, pref, log=ctx.log, progress=progress,
                           before_load=before_load, measured=ctx.measured())
        except AppError as err:
            if self._queue.engine is None:  # unloaded for nothing: bring the old model back
                back = load(spec_for(old.candidate, Path(old.engine.spec.path), ctx.settings))
                self._queue.swap(back)
                with self._lock:
                    self._loaded = replace(old, engine=back)
            raise AppError(f"{err} Still running {self.current().summary().text()}.") from err
        previous = self._queue.swap(loaded.engine)
        if previous is not None:
            previous.close()
        with self._lock:
            self._loaded = loaded
        return loaded

    def close(self) -> None:
        """At exit: the engine running now (which a switch may have changed) is closed after its answers end."""
        self._queue.release()
