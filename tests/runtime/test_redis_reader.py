"""The Redis broker follows every open stream of a process with one blocking read."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from dockyard.runtime.broker import Event
from dockyard.runtime.redis_broker import RedisBroker
from tests.conftest import eventually
from tests.redis_server import REDIS_URL, fresh_prefix

pytestmark = pytest.mark.asyncio


@contextlib.asynccontextmanager
async def _broker(block_ms: int, client_name: str | None = None) -> AsyncIterator[RedisBroker]:
    name = client_name or f"dockyard-reader-test-{uuid.uuid4().hex[:8]}"
    with fresh_prefix() as prefix:
        client = Redis.from_url(REDIS_URL, client_name=name)
        broker = RedisBroker(client, prefix, block_ms=block_ms)
        await broker.start()
        try:
            yield broker
        finally:
            await broker.stop()
            await client.aclose()


async def _read_blocks(broker: RedisBroker, streams: int) -> None:
    """Wait until the broker's reader follows ``streams`` streams and Redis reports its
    read blocked (the ``b`` client flag): the read is out, waiting for news."""
    name = broker._redis.get_connection_kwargs()["client_name"]
    admin = Redis.from_url(REDIS_URL)

    async def blocked() -> bool:
        if len(broker._reader._subs) < streams:
            return False
        clients = await admin.client_list()
        return any(c.get("name") == name and "b" in c.get("flags", "") for c in clients)

    try:
        await eventually(blocked)
    finally:
        await admin.aclose()


async def _follow(broker: RedisBroker, run_id: str, after: str) -> list[Event]:
    return [ev async for ev in broker.subscribe(run_id, after)]


async def test_many_open_streams_share_one_connection() -> None:
    # A blocking XREAD per stream held a Redis connection per SSE client.
    name = f"dockyard-reader-test-{uuid.uuid4().hex[:8]}"
    async with _broker(block_ms=2_000, client_name=name) as broker:
        runs = [f"run-{i}" for i in range(40)]
        firsts = [broker.announce(r, "metadata", b"{}").event.id for r in runs]
        await broker.flush()
        readers = [
            asyncio.create_task(_follow(broker, r, first))
            for r, first in zip(runs, firsts, strict=True)
        ]
        await _read_blocks(broker, len(runs))  # every reader waits; nothing new yet
        admin = Redis.from_url(REDIS_URL)
        ours = [c for c in await admin.client_list() if c.get("name") == name]
        await admin.aclose()
        assert len(ours) <= 3, f"{len(ours)} connections for 40 open streams"
        for r in runs:
            broker.publish(r, "values", r.encode())
            broker.close(r)
        results = await asyncio.wait_for(asyncio.gather(*readers), 10)
        assert [[(e.event, e.data) for e in evs] for evs in results] == [
            [("values", r.encode())] for r in runs
        ]


async def test_a_reader_joining_a_busy_read_is_woken_at_once() -> None:
    async with _broker(block_ms=5_000) as broker:
        broker.publish("quiet", "metadata", b"{}")
        await broker.flush()
        quiet = asyncio.create_task(_follow(broker, "quiet", "0-0"))
        await _read_blocks(broker, 1)  # the shared read now blocks for up to 5 s
        broker.publish("late", "values", b"1")
        broker.close("late")
        loop = asyncio.get_running_loop()
        started = loop.time()
        events = await asyncio.wait_for(_follow(broker, "late", "0-0"), 10)
        assert [e.data for e in events] == [b"1"]
        assert loop.time() - started < 1.0  # not after the other read's 5 s
        broker.close("quiet")
        assert [e.event for e in await asyncio.wait_for(quiet, 10)] == ["metadata"]


async def test_a_reader_of_a_stream_that_is_gone_ends() -> None:
    async with _broker(block_ms=200) as broker:
        broker.announce("r", "metadata", b"{}")  # id 0-1
        broker.announce("busy", "metadata", b"{}")
        await broker.flush()
        busy = asyncio.create_task(_follow(broker, "busy", "0-1"))
        reader = asyncio.create_task(_follow(broker, "r", "0-1"))
        await _read_blocks(broker, 2)
        admin = Redis.from_url(REDIS_URL)
        await admin.delete(broker.key("r"))  # as when the run's thread is deleted
        await admin.aclose()
        # Another stream keeps the shared read busy meanwhile, until the reader ends
        # (an event every 50 ms, far less than the block time: no read ever waits it out).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        published = 0
        while not reader.done():
            assert loop.time() < deadline, "the reader of the deleted stream did not end"
            broker.publish("busy", "values", str(published).encode())
            published += 1
            await asyncio.sleep(0.05)
        assert await reader == []
        broker.close("busy")
        assert len(await asyncio.wait_for(busy, 5)) == published


async def test_an_entry_that_is_not_an_event_is_passed_over() -> None:
    # One task reads every stream of the process: a stray entry must not stop it.
    async with _broker(block_ms=2_000) as broker:
        broker.announce("r", "metadata", b"{}")
        await broker.flush()
        reader = asyncio.create_task(_follow(broker, "r", "0-1"))
        await _read_blocks(broker, 1)
        admin = Redis.from_url(REDIS_URL)
        await admin.xadd(broker.key("r"), {"something": "else"})
        await admin.aclose()
        broker.publish("r", "values", b"1")
        broker.close("r")
        assert [e.data for e in await asyncio.wait_for(reader, 5)] == [b"1"]


async def test_a_second_reader_joining_mid_read_gets_the_whole_stream() -> None:
    # The shared read of a stream starts at its furthest-behind reader's position as
    # of when the read was sent; a reader that joins during it from further back must
    # not be handed only what that read returns.
    async with _broker(block_ms=5_000) as broker:
        broker.publish("r", "metadata", b"{}")
        broker.publish("r", "values", b"1")
        await broker.flush()
        first = asyncio.create_task(_follow(broker, "r", "0-0"))
        # A read with entries for it returns at once: a blocked one means the first
        # reader has both.
        await _read_blocks(broker, 1)
        second = asyncio.create_task(_follow(broker, "r", "0-0"))
        await asyncio.sleep(0)  # one loop turn: it joins; its wake-up goes with the next batch
        assert len(broker._reader._subs[broker.key("r")]) == 2
        broker.publish("r", "values", b"2")  # ... in the same batch as the wake-up
        broker.close("r")
        for task in (first, second):
            events = await asyncio.wait_for(task, 10)
            assert [(e.event, e.data) for e in events] == [
                ("metadata", b"{}"),
                ("values", b"1"),
                ("values", b"2"),
            ]
