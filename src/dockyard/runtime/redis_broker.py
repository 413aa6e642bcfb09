"""Run events in Redis Streams: any API process serves the stream of a run executing anywhere.

One Redis stream per run (``<prefix>:stream:<run_id>``), entry ids are the SSE
ids (Redis' ``<ms>-<seq>``), so ``Last-Event-ID`` replay is an ``XREAD`` from
that id. ``publish`` only queues: a single writer task sends queued events in
pipelined batches, in order, so a run step never waits on the network.
A closed stream ends with a ``__close__`` entry and expires after the retention
time; an abandoned one (its process died before closing) after a day.

A run's first event (its metadata) has the fixed id ``0-1``: the process that
creates the run knows the id without a round trip, and the worker that claims the
run writes the same event under the same id, so whichever comes first is the
stream's first entry and the other one is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from dockyard.runtime.broker import Announced, Event
from dockyard.runtime.components import BackgroundTask
from dockyard.runtime.redis_reader import StreamReader

log = logging.getLogger("dockyard.stream")

_CLOSE = b"__close__"
_OPEN_TTL_SECONDS = 24 * 3600
_ID = re.compile(r"^\d+-\d+$")
FIRST_ID = "0-1"
# While Redis is away events wait in memory, up to this many; then the oldest go.
_MAX_QUEUED = 100_000


class RedisBroker:
    shared = True

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        retention_seconds: float = 300.0,
        max_events: int = 10_000,
        block_ms: int = 5_000,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._retention = max(1, int(retention_seconds))
        self._max_events = max_events
        self._block_ms = block_ms
        # (run_id, event, data, whether it is the run's first event)
        self._queue: list[tuple[str, bytes, bytes, bool]] = []
        self._queued = 0  # events ever queued
        self._sent = 0  # events ever written
        self._kick = asyncio.Event()
        self._progress = asyncio.Event()
        self._writer_task = BackgroundTask("dockyard-redis-broker", self._writer)
        self._opened: set[str] = set()  # stream keys this process gave the open TTL
        # Pub/sub messages that go out with the next batch, after its events (an
        # ordered set: the same wake-up twice in one batch is sent once).
        self._messages: dict[tuple[str, bytes], None] = {}
        # This process's control stream: an entry there wakes its reader's XREAD.
        self._control = f"{prefix}:reader:{uuid.uuid4().hex}"
        self._wake_reader = False
        self._reader = StreamReader(redis, self._control, block_ms, self._request_wake)

    def _request_wake(self) -> None:
        self._wake_reader = True
        self._kick.set()

    def key(self, run_id: str) -> str:
        return f"{self._prefix}:stream:{run_id}"

    async def start(self) -> None:
        await self._writer_task.start()

    async def stop(self) -> None:
        """Write what is queued (bounded), then stop the writer."""
        await self._reader.stop()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await self.flush()
        await self._writer_task.stop()

    def publish(self, run_id: str, event: str, data: bytes) -> None:
        self._enqueue(run_id, event.encode(), data)

    def send_with_next_batch(self, channel: str, message: bytes) -> None:
        """PUBLISH ``message`` in the next batch's round trip, after the events queued
        before it (a new run's wake-up rides with its first event)."""
        self._messages[(channel, message)] = None
        self._kick.set()

    def announce(self, run_id: str, event: str, data: bytes) -> Announced:
        # A reader after FIRST_ID sees everything else the stream holds, also when
        # the claiming worker's copy of this event got there first.
        self._enqueue(run_id, event.encode(), data, first=True)
        return Announced(Event(FIRST_ID, event, data), alone=True)

    def close(self, run_id: str) -> None:
        self._enqueue(run_id, _CLOSE, b"")

    def _enqueue(
        self,
        run_id: str,
        event: bytes,
        data: bytes,
        first: bool = False,
    ) -> None:
        if len(self._queue) >= _MAX_QUEUED:
            del self._queue[0]
            self._sent += 1  # counted as done so flush() does not wait for it
            log.error("redis unreachable: dropped the oldest queued run event")
        self._queue.append((run_id, event, data, first))
        self._queued += 1
        self._kick.set()

    async def flush(self) -> None:
        target = self._queued
        while self._sent < target:
            progress = self._progress
            await progress.wait()

    async def has(self, run_id: str) -> bool:
        return bool(await self._redis.exists(self.key(run_id)))

    def parse_after(self, last_event_id: str) -> str:
        if not _ID.match(last_event_id):
            raise ValueError(last_event_id)
        return last_event_id

    async def _writer(self) -> None:
        delay = 0.1
        while True:
            await self._kick.wait()
            self._kick.clear()
            batch, messages, wake = self._queue, self._messages, self._wake_reader
            if not batch and not messages and not wake:
                continue
            self._queue, self._messages, self._wake_reader = [], {}, False
            try:
                await self._write(batch, messages, wake)
            except RedisError as e:
                log.warning("redis write failed (%s); retrying in %.1fs", e, delay)
                self._queue[:0] = batch  # keep order: the failed batch goes first
                self._messages = messages | self._messages
                self._wake_reader = self._wake_reader or wake
                self._kick.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.1
            self._sent += len(batch)
            progress, self._progress = self._progress, asyncio.Event()
            progress.set()

    async def _write(
        self,
        batch: list[tuple[str, bytes, bytes, bool]],
        messages: dict[tuple[str, bytes], None],
        wake_reader: bool = False,
    ) -> None:
        """Send a batch in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        touched: dict[str, bool] = {}  # run key -> closed in this batch
        for run_id, event, data, first in batch:
            key = self.key(run_id)
            pipe.xadd(
                key,
                {"e": event, "d": data},
                id=FIRST_ID if first else "*",
                maxlen=self._max_events + 1,
                approximate=True,
            )
            touched[key] = touched.get(key, False) or event == _CLOSE
        opened = self._opened
        for key, closed in touched.items():
            if closed:
                pipe.expire(key, self._retention)
            elif key not in opened:
                # Once per stream and process: a later batch would only set the same TTL.
                pipe.expire(key, _OPEN_TTL_SECONDS)
        for channel, message in messages:
            pipe.publish(channel, message)
        if wake_reader:
            pipe.xadd(self._control, {"w": b""}, maxlen=16, approximate=True)
            pipe.expire(self._control, 3600)
        results = await pipe.execute(raise_on_error=False)
        for i, result in enumerate(results):
            if not isinstance(result, Exception):
                continue
            if i < len(batch) and batch[i][3] and _refused_first(result):
                continue  # the run's first event is there already
            raise result
        if len(opened) > _MAX_QUEUED:
            opened.clear()  # streams handed to another process never close here
        for key, closed in touched.items():
            if closed:
                opened.discard(key)
            else:
                opened.add(key)

    async def subscribe(self, run_id: str, after: str | None = None) -> AsyncIterator[Event]:
        followed = self._reader.follow(self.key(run_id), after or "0-0")
        async with contextlib.aclosing(followed) as batches:
            async for batch in batches:
                for entry_id, event, data in batch:
                    if event == _CLOSE:
                        return
                    yield Event(entry_id, event.decode(), data)


def _refused_first(error: Exception) -> bool:
    # XADD with an id at or below the stream's last one.
    return isinstance(error, ResponseError) and "equal or smaller" in str(error)
