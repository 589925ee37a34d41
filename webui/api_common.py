"""What every API route shares: its errors from the app's, the queue turn watched for a client that goes away, the
engine's events collected or streamed, the usage figures, server-sent event frames. Routes: webui/api.py (models, chat
completions), webui/api_completions.py (/v1/completions), webui/api_responses.py (/v1/responses)."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
from fastapi import Request

from app.serving import Event, LeftQueue, QueueFull, ServingQueue
from models.engines import Reply, Sampling
from models.errors import AppError, PromptTooLong

from .access_log import record
from .api_request import ApiError


def client_gone() -> ApiError:
    """The client went away before its answer (nginx's 499): the log says so; nobody receives it."""
    return ApiError(499, "the client closed the request: its question left the queue or its answer was stopped",
                    code="client_closed_request")


def app_error(err: AppError) -> ApiError:
    if isinstance(err, LeftQueue):
        return client_gone()
    if isinstance(err, QueueFull):
        return ApiError(429, str(err), type_="rate_limit_error", code="queue_full",
                        headers={"Retry-After": str(err.retry_after_s)})
    if isinstance(err, PromptTooLong):
        return ApiError(400, str(err), param="messages", code="context_length_exceeded")
    if isinstance(err, ValueError):  # InvalidSampling and other bad values; ResponseFormatError names its param
        return ApiError(400, str(err), param=getattr(err, "param", None))
    return ApiError(503, str(err), type_="server_error", code="engine_unavailable")


async def watched(request: Request, service: ServingQueue, owner: str, work: Callable[..., Any], *args):
    """`work(*args)` in a worker thread while watching the client: one that goes away (a timeout, Ctrl-C, the SDK
    giving up before a retry) has its question taken out of the line or its generation stopped, so the next person
    does not wait for an answer nobody reads."""
    async with anyio.create_task_group() as group:
        async def watch() -> None:
            while not await request.is_disconnected():
                await anyio.sleep(0.2)
            service.cancel(owner)

        group.start_soon(watch)
        try:
            outcome = await anyio.to_thread.run_sync(work, *args)
        except Exception as err:  # noqa: BLE001 - raised below as it is, not wrapped in the group's ExceptionGroup
            outcome = err
        group.cancel_scope.cancel()
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def first_answer_event(events: Iterator[Event]) -> Event | None:
    """Wait in the queue (in a worker thread) until the first text or the end; errors are raised here."""
    for event in events:
        if not event.position:
            return event
    return None


def collect(events: Iterator[Event], first: Event | None) -> tuple[str, Reply | None]:
    parts, reply = [], None
    for event in ([first] if first else []) + list(events):
        if event.reply is not None:
            reply = event.reply
        else:
            parts.append(event.delta)
    return "".join(parts), reply


def finish(reply: Reply | None) -> str:
    reason = reply.stats.finish_reason if reply and reply.stats else "stop"
    return "length" if reason == "length" else "stop"


def usage(reply: Reply | None) -> dict:
    prompt = reply.stats.prompt_tokens if reply and reply.stats else 0
    done = reply.stats.generated_tokens if reply and reply.stats else 0
    return {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done}


def frame(data: dict) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()




async def answer_whole(request: Request, service: ServingQueue, messages: list[dict], sampling: Sampling
                       ) -> tuple[str, Reply | None]:
    """One question through the queue, its answer whole (the client watched while it waits and while it is
    collected); an error is an ApiError. The usage goes to the access log."""
    owner = f"api:{secrets.token_urlsafe(12)}"
    events = service.ask(owner, messages, sampling)
    try:
        first = await watched(request, service, owner, first_answer_event, events)
        text, reply = await watched(request, service, owner, collect, events, first)
    except AppError as err:
        raise app_error(err) from None
    finally:
        events.close()
    record(request.scope)["usage"] = usage(reply)
    if reply is not None and reply.stats and reply.stats.finish_reason == "cancelled" \
            and await request.is_disconnected():
        raise client_gone()  # stopped because its client went away: nobody reads it
    return text, reply


async def answer_events(request: Request, service: ServingQueue, messages: list[dict], sampling: Sampling
                        ) -> AsyncIterator[Event]:
    """One question through the queue, streamed: waits for its turn first (an error then is an ApiError, before any
    byte is sent), then yields the engine's events, each fetched in a worker thread. Closing it (a client gone
    mid-stream: Starlette cancels the response) ends the turn and stops the engine; an engine error mid-answer is
    raised as AppError."""
    owner = f"api:{secrets.token_urlsafe(12)}"
    events = service.ask(owner, messages, sampling)
    try:
        first = await watched(request, service, owner, first_answer_event, events)
    except AppError as err:
        events.close()
        raise app_error(err) from None
    return _rest(events, first, record(request.scope))


async def _rest(events: Iterator[Event], first: Event | None, notes: dict) -> AsyncIterator[Event]:
    done = object()
    try:
        event = first
        while event is not None and event is not done:
            if event.reply is not None:
                notes["usage"] = usage(event.reply)
            yield event
            if event.reply is not None:
                break
            event = await anyio.to_thread.run_sync(next, events, done)
    finally:  # shielded: a client gone mid-stream cancels this generator, and the close must still run
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(events.close)


async def answers_whole(request: Request, service: ServingQueue, messages: list[dict], samplings: list[Sampling]
                        ) -> list[tuple[str, Reply | None]]:
    """Several answers to one question (`n`), each its own turn in the queue (with free slots they run together);
    the first error ends them all."""
    if len(samplings) == 1:
        return [await answer_whole(request, service, messages, samplings[0])]
    out: list = [None] * len(samplings)
    failed: list[ApiError] = []

    async with anyio.create_task_group() as group:
        async def one(i: int, sampling: Sampling) -> None:
            try:
                out[i] = await answer_whole(request, service, messages, sampling)
            except ApiError as err:  # the first error ends the others; raised below as it is
                failed.append(err)
                group.cancel_scope.cancel()

        for i, sampling in enumerate(samplings):
            group.start_soon(one, i, sampling)
    if failed:
        raise failed[0]
    record(request.scope)["usage"] = total_usage([reply for _, reply in out])  # the log says what the answer does
    return out


def total_usage(replies: list[Reply | None]) -> dict:
    """The usage of `n` answers: the prompt once (as OpenAI counts it), every answer's tokens."""
    figures = [usage(reply) for reply in replies]
    prompt, done = figures[0]["prompt_tokens"], sum(f["completion_tokens"] for f in figures)
    return {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done}

