"""One blocking ``XREAD`` per process for every run stream it is following.

A blocking read holds its Redis connection until it returns, so a reader per
open stream meant a connection per SSE client in every API process. Here one
task reads all followed streams at once and hands each subscriber what is new
for it. A new subscription wakes a read already in progress through the
process's own control stream: the broker's writer adds an entry to it with its
next pipelined batch, so following a new run costs no round trip of its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from dockyard.runtime.components import BackgroundTask

log = logging.getLogger("dockyard.stream")

Entry = tuple[str, bytes, bytes]  # (id, event, data)


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _pos(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class _Sub:
    __slots__ = ("last", "queue")

    def __init__(self, last: str) -> None:
        self.last = _pos(last)
        # Batches of new entries; None: the stream is gone (expired or deleted).
        self.queue: asyncio.Queue[list[Entry] | None] = asyncio.Queue()


class StreamReader:
    def __init__(
        self,
        redis: Redis,
        control_key: str,
        block_ms: int,
        wake: Callable[[], None],
    ) -> None:
        self._redis = redis
        self._control = control_key
        self._control_last = "0-0"
        self._block_ms = block_ms
        self._wake = wake  # asks the writer to add a control entry with its next batch
        self._subs: dict[str, set[_Sub]] = {}
        self._seen: dict[str, float] = {}  # key -> when it last had news or a new reader
        self._blocked = False
        self._checked_at = 0.0
        self._idle = asyncio.Event()
        self._task = BackgroundTask("dockyard-redis-reader", self._run)
        self._started = False  # the task starts with the first reader
        self._stopping = False

    async def follow(self, key: str, after: str) -> AsyncGenerator[list[Entry], None]:
        """Batches of the entries of ``key`` after ``after``, until the stream is gone
        (the caller stops at the stream's close entry)."""
        if self._stopping:  # shutting down: nothing more will be read
            return
        if not self._started:
            self._started = True
            await self._task.start()
        sub = _Sub(after)
        self._subs.setdefault(key, set()).add(sub)
        self._seen[key] = time.monotonic()
        if self._blocked:
            self._wake()
        self._idle.set()
        try:
            while (batch := await sub.queue.get()) is not None:
                yield batch
        finally:
            subs = self._subs.get(key)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[key]
                    self._seen.pop(key, None)

    async def stop(self) -> None:
        self._stopping = True
        await self._task.stop()
        for subs in self._subs.values():
            for sub in subs:
                sub.queue.put_nowait(None)

    async def _run(self) -> None:
        delay = 0.1
        while not self._stopping:
            if not self._subs:
                self._idle.clear()
                await self._idle.wait()
                continue
            streams: dict[Any, Any] = {self._control: self._control_last}
            lows: dict[str, tuple[int, int]] = {}
            for key, subs in self._subs.items():
                low = lows[key] = min(sub.last for sub in subs)
                streams[key] = f"{low[0]}-{low[1]}"
            self._blocked = True
            try:
                resp: Any = await self._redis.xread(streams, count=1000, block=self._block_ms)
                self._blocked = False
                self._deliver(resp or [], lows)
                await self._end_quiet_gone()
            except Exception as e:
                # redis-py may turn a cancelled blocking read into a timeout error.
                if self._stopping:
                    return
                # Every open stream of the process waits on this task: it must not die.
                if isinstance(e, RedisError):
                    log.warning("redis read failed (%s); retrying in %.1fs", e, delay)
                else:
                    log.exception("reading run streams failed; retrying in %.1fs", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            finally:
                self._blocked = False
            delay = 0.1

    def _deliver(self, resp: list[Any], read_from: dict[str, tuple[int, int]]) -> None:
        now = time.monotonic()
        for raw_key, raw_entries in resp:
            key = _str(raw_key)
            last_id = _str(raw_entries[-1][0])
            if key == self._control:
                self._control_last = last_id
                continue
            subs = self._subs.get(key)
            if not subs:
                continue  # its readers left while the read was out
            start = read_from[key]
            last = _pos(last_id)
            # Entries that are not ours (no event name) are passed over, not fatal.
            entries = [(_str(i), f[b"e"], f.get(b"d", b"")) for i, f in raw_entries if b"e" in f]
            self._seen[key] = now
            for sub in subs:
                if sub.last < start:
                    # It joined while this read was out, from an earlier position: the
                    # entries between are not here. The next read starts from it.
                    continue
                # Usually the read started at this reader's position: all of it is new.
                if sub.last == start:
                    new = entries
                else:
                    new = [e for e in entries if _pos(e[0]) > sub.last]
                sub.last = max(sub.last, last)
                if new:
                    sub.queue.put_nowait(new)

    async def _end_quiet_gone(self) -> None:
        """End the readers of streams quiet for a whole block time that no longer
        exist (expired, or their run deleted): they will never say more."""
        now = time.monotonic()
        if now - self._checked_at < self._block_ms / 2000:
            return
        self._checked_at = now
        cutoff = now - self._block_ms / 1000
        quiet = [key for key, seen in self._seen.items() if seen <= cutoff]
        if not quiet:
            return
        pipe = self._redis.pipeline(transaction=False)
        for key in quiet:
            pipe.exists(key)
        now = time.monotonic()
        for key, exists in zip(quiet, await pipe.execute(), strict=True):
            if key not in self._subs:
                continue  # its readers left while we asked: nothing to keep checking
            if exists:
                self._seen[key] = now
            else:
                for sub in self._subs.pop(key):
                    sub.queue.put_nowait(None)
                self._seen.pop(key, None)
