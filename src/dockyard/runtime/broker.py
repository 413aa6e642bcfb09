"""The stream broker: every event a run emits, kept for replay by ``Last-Event-ID``.

A subscriber asks for everything after an event id and then follows the live
tail until the run closes its stream. Ids are opaque strings to clients (the
SSE ``id:``); each broker parses its own. The in-process broker (ids 1, 2, ...)
is the embedded default; ``runtime.redis_broker`` implements the same protocol
across processes.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol, cast

from dockyard.runtime.serde import dumps


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    event: str
    data: bytes  # JSON, serialised once at publish time

    def encode(self) -> bytes:
        return b"event: %s\ndata: %s\nid: %s\n\n" % (
            self.event.encode(),
            self.data,
            self.id.encode(),
        )


def first_event(run_id: str) -> bytes:
    """The data of a run's first event (``metadata``): the same wherever it is made,
    by the process that creates the run or by the worker that claims it."""
    return dumps({"run_id": run_id, "attempt": 1})


@dataclass(frozen=True, slots=True)
class Announced:
    event: Event
    # Nothing was in the stream before it: a reader may start right after it. (Not
    # always so: a worker elsewhere can claim a new run and write first.)
    alone: bool


class StreamBroker(Protocol):
    # True when other processes see the events (a run may move between them).
    shared: bool

    def publish(self, run_id: str, event: str, data: bytes) -> None:
        """Queue an event; never blocks (the hot path of every run step)."""

    def close(self, run_id: str) -> None:
        """No more events: subscribers finish once they have read everything."""

    async def flush(self) -> None:
        """Return when everything published so far is visible to subscribers."""

    def announce(self, run_id: str, event: str, data: bytes) -> Announced:
        """Publish a run's first event and return it with its replay id, without
        waiting for it to be stored: the process that creates a run sends the first
        event itself and follows the stream from there."""

    async def has(self, run_id: str) -> bool: ...

    def parse_after(self, last_event_id: str) -> str:
        """Validate a client's Last-Event-ID; raises ValueError if not one of ours."""

    def subscribe(self, run_id: str, after: str | None = None) -> AsyncIterator[Event]: ...


@dataclass
class _RunLog:
    events: list[Event] = field(default_factory=list)
    first_id: int = 1  # id of events[0] once old events were dropped
    next_id: int = 1
    closed: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def notify(self) -> None:
        ev, self.changed = self.changed, asyncio.Event()
        ev.set()


# A finished run's events, kept for replay: (id of the first, event, data, event,
# data, ...). One flat tuple of strings and bytes, which the garbage collector
# stops tracking at its first collection: a busy server keeps minutes of finished
# runs, and as objects (about 12 per run) they made every full collection walk
# them (pauses of 100 ms and more under load).
_Finished = tuple[str | bytes, ...]


class MemoryBroker:
    shared = False

    def __init__(
        self,
        retention_seconds: float = 300.0,
        max_events: int = 10_000,
        retention_max_bytes: int = 256 * 2**20,
    ) -> None:
        self._live: dict[str, _RunLog] = {}
        self._finished: dict[str, _Finished] = {}
        # (deadline, run id, bytes) of each finished run, in closing order
        self._expiry: deque[tuple[float, str, int]] = deque()
        self._finished_bytes = 0
        self._retention = retention_seconds
        self._max_events = max_events
        self._max_bytes = retention_max_bytes

    def _expire(self) -> None:
        """Forget finished runs past their retention, then the oldest while the
        kept events are over the byte budget (a busy server with large states
        would otherwise hold minutes of them)."""
        now = time.monotonic()
        expiry = self._expiry
        while expiry and (expiry[0][0] <= now or self._finished_bytes > self._max_bytes):
            _, run_id, size = expiry.popleft()
            del self._finished[run_id]
            self._finished_bytes -= size

    def _log(self, run_id: str) -> _RunLog:
        log = self._live.get(run_id)
        if log is None:
            log = self._live[run_id] = _RunLog()
        return log

    async def has(self, run_id: str) -> bool:
        self._expire()
        return run_id in self._live or run_id in self._finished

    async def flush(self) -> None:
        return None

    def parse_after(self, last_event_id: str) -> str:
        # Older dockyard builds sent "<run_id>:<n>"; accept the number either way.
        return str(int(last_event_id.rsplit(":", 1)[-1]))

    def announce(self, run_id: str, event: str, data: bytes) -> Announced:
        if run_id in self._finished:  # not stored; a reader starts from the beginning
            return Announced(Event("0", event, data), alone=False)
        self.publish(run_id, event, data)
        log = self._live[run_id]
        return Announced(log.events[-1], alone=log.next_id == 2)

    def publish(self, run_id: str, event: str, data: bytes) -> None:
        if run_id in self._finished:
            return
        log = self._log(run_id)
        # Kept as a copy of the exact size: orjson (3.13) hands out its 4 KiB write
        # buffer as the bytes object, and kept for minutes, a few per run, those
        # buffers were most of the server's memory (RSS grew ~20 KiB a run).
        log.events.append(Event(str(log.next_id), event, bytes(memoryview(data))))
        log.next_id += 1
        if len(log.events) > self._max_events:
            drop = len(log.events) - self._max_events
            del log.events[:drop]
            log.first_id += drop
        log.notify()

    def close(self, run_id: str) -> None:
        if run_id in self._finished:
            return
        log = self._live.pop(run_id, None) or _RunLog()
        log.closed = True
        log.notify()  # readers following it finish from their own reference
        flat: list[str | bytes] = [str(log.first_id)]
        size = 0
        for e in log.events:
            flat += (e.event, e.data)
            size += len(e.event) + len(e.data)
        self._finished[run_id] = tuple(flat)
        self._expiry.append((time.monotonic() + self._retention, run_id, size))
        self._finished_bytes += size
        self._expire()

    async def subscribe(self, run_id: str, after: str | None = None) -> AsyncIterator[Event]:
        self._expire()
        start = int(after or 0) + 1
        finished = self._finished.get(run_id)
        if finished is not None:
            first_id = int(finished[0])
            for i in range(max(start - first_id, 0), (len(finished) - 1) // 2):
                event, data = finished[1 + 2 * i : 3 + 2 * i]
                yield Event(str(first_id + i), cast(str, event), cast(bytes, data))
            return
        log = self._log(run_id)
        pos = max(start, log.first_id)
        while True:
            changed = log.changed
            start = pos - log.first_id
            if start < 0:  # events dropped while we were away
                pos = log.first_id
                start = 0
            for ev in log.events[start:]:
                yield ev
                pos = int(ev.id) + 1
            if log.closed and pos >= log.next_id:
                return
            await changed.wait()
