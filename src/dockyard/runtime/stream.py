"""The stream broker: every event a run emits, kept for replay by ``Last-Event-ID``.

A run's events are numbered from 1; a subscriber asks for everything after an
id and then follows the live tail until the run closes its stream. The
in-process broker is the embedded default; a cross-process broker (Redis)
implements the same protocol.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    event: str
    data: bytes  # JSON, serialised once at publish time

    def encode(self) -> bytes:
        return b"event: %s\ndata: %s\nid: %d\n\n" % (self.event.encode(), self.data, self.id)


class StreamBroker(Protocol):
    def publish(self, run_id: str, event: str, data: bytes) -> None: ...

    def close(self, run_id: str) -> None: ...

    def has(self, run_id: str) -> bool: ...

    def subscribe(self, run_id: str, after: int = 0) -> AsyncIterator[Event]: ...


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


class MemoryBroker:
    def __init__(self, retention_seconds: float = 300.0, max_events: int = 10_000) -> None:
        self._logs: dict[str, _RunLog] = {}
        self._retention = retention_seconds
        self._max_events = max_events

    def _log(self, run_id: str) -> _RunLog:
        log = self._logs.get(run_id)
        if log is None:
            log = self._logs[run_id] = _RunLog()
        return log

    def has(self, run_id: str) -> bool:
        return run_id in self._logs

    def publish(self, run_id: str, event: str, data: bytes) -> None:
        log = self._log(run_id)
        if log.closed:
            return
        log.events.append(Event(log.next_id, event, data))
        log.next_id += 1
        if len(log.events) > self._max_events:
            drop = len(log.events) - self._max_events
            del log.events[:drop]
            log.first_id += drop
        log.notify()

    def close(self, run_id: str) -> None:
        log = self._log(run_id)
        log.closed = True
        log.notify()
        loop = asyncio.get_running_loop()
        loop.call_later(self._retention, self._logs.pop, run_id, None)

    async def subscribe(self, run_id: str, after: int = 0) -> AsyncIterator[Event]:
        log = self._log(run_id)
        pos = max(after + 1, log.first_id)
        while True:
            changed = log.changed
            start = pos - log.first_id
            if start < 0:  # events dropped while we were away
                pos = log.first_id
                start = 0
            for ev in log.events[start:]:
                yield ev
                pos = ev.id + 1
            if log.closed and pos >= log.next_id:
                return
            await changed.wait()
