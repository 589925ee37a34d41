"""The serving queue the page and the API share: everyone's questions wait in one line for the engine's slots.

Stop only stops the caller's own generation; a closed tab or a dropped client leaves the line at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

from models.engines import Engine, Reply, Sampling
from models.errors import AppError


@dataclass(frozen=True)
class Event:
    """What a caller of `ask` sees: its place in the queue, then text, then the finished reply."""

    position: int = 0  # > 0: still waiting, this many answers come first
    delta: str = ""
    reply: Reply | None = None  # on the last event
    engine: str = ""  # on the last event: the name of the engine that answered
    note: str = ""  # while waiting: the model is being switched, and what that switch is doing


class QueueFull(AppError, RuntimeError):
    """Every place in the wait queue is taken: ask again in a little while."""

    def __init__(self, message: str, retry_after_s: int = 10):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class LeftQueue(AppError, RuntimeError):
    """The caller pressed Stop while waiting: it leaves the line, nothing was asked."""


_SWITCH = object()  # holds the turn while the engine is replaced


@dataclass(eq=False)
class _Ticket:
    holder: object
    withdrawn: bool = False  # its owner pressed Stop while it waited


def queue_full_message(max_queue: int, slots: int) -> str:
    """What a question that finds no slot and no place in the line is told. Pure."""
    answering = f"All {slots} answer slots are busy" if slots > 1 else "An answer is running"
    if max_queue <= 0:
        return f"{answering} and this server keeps no queue (--max-queue 0): ask again in a little while."
    return f"All {max_queue} places in the queue are taken: ask again in a little while."


class ServingQueue:
    """Runs answers on one engine for everyone: the page and the API share this line. Stop only stops the
    caller's own generation.

    Concurrency, all under `_cond`: `_holders` are whoever has a turn now: answer owners, each admitted by the
    engine to one of its slots (`engine.admit()`, the one gate: its `max_parallel`, several on a continuous-batching
    engine, else one; `_admitted` remembers which engine to give each slot back to), or the switch, which takes the
    engine alone when no answer holds a turn and does not queue behind waiting answers; `_waiting` are the
    tickets in line, first come first served, at most `max_queue` of them. A waiter that goes away (a closed
    tab, a dropped API client) or presses Stop (`cancel` withdraws its ticket) leaves the line at once. `swap` and
    `release` wait until no answer runs, then hold the engine while it changes. While the page switches
    models (`begin_switch` .. `end_switch`) and no engine is loaded, questions wait instead of failing.
    `cancel(owner)` stops that owner's replies only (`_replies`), in the engine.
    """

    def __init__(self, engine: Engine | None, max_queue: int = 16):
        self.engine = engine
        self.max_queue = max_queue
        self._cond = threading.Condition()
        self._holders: list[object] = []
        self._admitted: list[tuple[object, Engine]] = []
        self._replies: dict[str, list[Reply]] = {}
        self._waiting: list[_Ticket] = []
        self._switching = ""

    @property
    def slots(self) -> int:
        return max(1, getattr(self.engine, "max_parallel", 1) or 1)

    @property
    def switching(self) -> str:
        """What a model switch is doing now ("" when none runs)."""
        return self._switching

    def begin_switch(self, what: str) -> None:
        with self._cond:
            self._switching = what or "switching models"
            self._cond.notify_all()

    def end_switch(self) -> None:
        with self._cond:
            self._switching = ""
            self._cond.notify_all()

    def _take(self, holder: object) -> bool:
        """Give `holder` its turn now if it can have one (under `_cond`): True when it holds it."""
        if _SWITCH in self._holders:
            return False
        if holder is _SWITCH:
            free = not self._holders
        elif self.engine is None:  # the next model is loading: wait for it; none coming: answered at once
            free = not self._switching and not self._holders
        else:
            free = self.engine.admit()
            if free:
                self._admitted.append((holder, self.engine))
        if free:
            self._holders.append(holder)
        return free

    # -- the turn ---------------------------------------------------------------------------
    def _wait_turn(self, holder: object) -> Iterator[int]:
        """Yields this caller's position while it waits; returns once it holds the turn."""
        ticket = _Ticket(holder)
        with self._cond:
            if not self._waiting and self._take(holder):
                return
            if len(self._waiting) >= self.max_queue and holder is not _SWITCH:
                raise QueueFull(queue_full_message(self.max_queue, self.slots))
            self._waiting.append(ticket)
        try:
            while True:
                with self._cond:
                    if ticket.withdrawn:
                        raise LeftQueue("Stopped before its turn: nothing was asked.")
                    first = holder is _SWITCH or self._waiting[0] is ticket
                    if first and self._take(holder):
                        self._waiting.remove(ticket)
                        return
                    position = self._waiting.index(ticket) + 1
                yield position
                with self._cond:
                    self._cond.wait(0.25)
        finally:
            with self._cond:
                if ticket in self._waiting:  # left the line (closed, Stop, error) before its turn
                    self._waiting.remove(ticket)
                    self._cond.notify_all()

    def _end_turn(self, holder: object) -> None:
        with self._cond:
            if holder in self._holders:
                self._holders.remove(holder)
                slot = next((a for a in self._admitted if a[0] == holder), None)
                if slot is not None:
                    self._admitted.remove(slot)
                    slot[1].dismiss()
                self._cond.notify_all()

    def queue_length(self) -> int:
        with self._cond:
            return len(self._waiting)

    def _exclusive(self) -> None:
        for _ in self._wait_turn(_SWITCH):
            pass

    def swap(self, engine: Engine) -> Engine | None:
        """Serve the next answers from another engine, after the running answer ends; returns the old one."""
        self._exclusive()
        try:
            old, self.engine = self.engine, engine
        finally:
            self._end_turn(_SWITCH)
        return old

    def release(self) -> Engine | None:
        """Close the running engine (after its answer ends) to free its memory before another loads.
        Until `swap` gives a new one, questions wait while a switch runs (`begin_switch`), else get a clear
        "being switched" message."""
        self._exclusive()
        try:
            old, self.engine = self.engine, None
        finally:
            self._end_turn(_SWITCH)
        if old is not None:
            old.close()
        return old

    def cancel(self, owner: str) -> bool:
        """Stop `owner`'s answer in the engine, or take its question out of the line; True if there was one."""
        with self._cond:
            replies = list(self._replies.get(owner, ()))
            waiting = [t for t in self._waiting if t.holder == owner]
            for ticket in waiting:
                ticket.withdrawn = True
            if waiting:
                self._cond.notify_all()
        for reply in replies:
            reply.cancel()
        return bool(replies or waiting)

    def busy(self, owner: str) -> bool:
        """Is an answer of `owner` running or waiting?"""
        with self._cond:
            return bool(self._replies.get(owner)) or owner in self._holders or any(
                t.holder == owner for t in self._waiting)

    # -- answering --------------------------------------------------------------------------
    def ask(self, owner: str, messages: list[dict], sampling: Sampling) -> Iterator[Event]:
        """The API's way in: queue, then stream one answer to `messages`. Closing the iterator (a client
        that went away) leaves the queue or stops the generation in the engine."""
        waiting = self._wait_turn(owner)
        try:
            for position in waiting:
                yield Event(position=position, note=self._switching if self.engine is None else "")
        finally:
            waiting.close()  # a caller gone while waiting leaves the line now, not when collected
        try:
            engine = self.engine
            if engine is None:
                raise AppError("The model is being switched: ask again in a moment.")
            reply = engine.stream(messages, sampling, admitted=True)  # admitted by `_take`
            with self._cond:
                self._replies.setdefault(owner, []).append(reply)
            try:
                for delta in reply:
                    yield Event(delta=delta)
            finally:
                with self._cond:
                    mine = self._replies.get(owner, [])
                    if reply in mine:
                        mine.remove(reply)
                    if not mine:
                        self._replies.pop(owner, None)
                reply.close()
            yield Event(reply=reply, engine=engine.name)
        finally:
            self._end_turn(owner)
