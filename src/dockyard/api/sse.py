"""Serve a run's broker events as SSE, with Last-Event-ID replay and mode filtering."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from fastapi.responses import StreamingResponse

from dockyard.api.deps import DockyardProcess
from dockyard.api.responses import sse_response
from dockyard.errors import InvalidRequestError
from dockyard.observability.metrics import current as current_metrics
from dockyard.runtime.broker import Announced
from dockyard.runtime.translate import STREAM_MODES
from dockyard.storage.base import Run

_ALWAYS = {"metadata", "error", "end"}


def _allowed(modes: Sequence[str] | None) -> set[str] | None:
    # httpx sends stream_mode=None as an empty value: that means "every mode".
    modes = [m for m in modes or () if m]
    if not modes:
        return None
    unknown = [m for m in modes if m not in STREAM_MODES]
    if unknown:
        raise InvalidRequestError(
            f"stream_mode: unknown mode(s) {unknown}; use any of {list(STREAM_MODES)}",
            param="stream_mode",
        )
    allowed = set(_ALWAYS)
    for m in modes:
        if m == "messages-tuple":
            allowed.add("messages")
        elif m == "messages":
            allowed.update(("messages/partial", "messages/metadata", "messages/complete"))
        else:
            allowed.add(m)
    return allowed


def parse_last_event_id(rt: DockyardProcess, value: str | None) -> str | None:
    if not value:
        return None
    try:
        return rt.broker.parse_after(value)
    except ValueError:
        raise InvalidRequestError(
            f"Last-Event-ID {value!r} is not an event id this server sent", param="Last-Event-ID"
        ) from None


def run_paths(run: Run) -> dict[str, str]:
    base = f"/threads/{run['thread_id']}/runs/{run['run_id']}"
    return {"Content-Location": base, "Location": f"{base}/stream"}


async def _body(
    rt: DockyardProcess,
    run: Run | None,
    allowed: set[str] | None,
    after: str | None,
    cancel_on_disconnect: bool,
    first: Announced | None = None,
) -> AsyncIterator[bytes]:
    if run is None:
        return
    finished = False
    metrics = current_metrics()
    streams = metrics.streams_open if metrics is not None else None
    if streams is not None:
        streams.inc()
    try:
        async for ev in rt.runs.events(run, after, first=first):
            if ev.event.startswith("__"):
                continue
            if allowed is not None and ev.event.split("|", 1)[0] not in allowed:
                continue
            yield ev.encode()
        finished = True
    finally:
        if streams is not None:
            streams.dec()
        if not finished and cancel_on_disconnect:
            cancel_when_client_leaves(rt, run["run_id"])


_background: set[asyncio.Task[None]] = set()


def cancel_when_client_leaves(rt: DockyardProcess, run_id: str) -> None:
    """Cancel the run if it is still active. Called while Starlette tears the response
    down, so the work runs as a task of its own instead of in the dying scope."""
    _background.add(asyncio.create_task(_cancel_if_active(rt, run_id)))


async def _cancel_if_active(rt: DockyardProcess, run_id: str) -> None:
    try:
        current = await rt.runs.find_run(run_id)
        if current is not None and current["status"] in ("pending", "running"):
            await rt.runs.cancel(current, "interrupt")
    finally:
        _background.difference_update({t for t in _background if t.done()})


def sse_events(
    rt: DockyardProcess,
    run: Run | None,
    modes: Sequence[str] | None,
    last_event_id: str | None,
    *,
    cancel_on_disconnect: bool = False,
    first: Announced | None = None,
) -> StreamingResponse:
    after = parse_last_event_id(rt, last_event_id)
    headers = run_paths(run) if run is not None else {}
    return sse_response(
        _body(rt, run, _allowed(modes), after, cancel_on_disconnect, first),
        headers=headers,
        # The first event (metadata, every mode's) is at hand: out with the headers.
        eager_first=first is not None and after is None,
    )
