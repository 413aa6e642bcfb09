"""Both stream brokers (in-process and Redis) under the same expectations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from dockyard.runtime.redis_broker import RedisBroker
from dockyard.runtime.stream import Event, MemoryBroker, StreamBroker
from tests.redis_server import REDIS_URL, fresh_prefix

pytestmark = pytest.mark.asyncio


@pytest.fixture(params=["memory", "redis"])
async def broker(request: Any) -> AsyncIterator[StreamBroker]:
    if request.param == "memory":
        yield MemoryBroker()
        return
    with fresh_prefix() as prefix:
        client = Redis.from_url(REDIS_URL)
        b = RedisBroker(client, prefix, block_ms=200)
        b.start()
        try:
            yield b
        finally:
            await b.stop()
            await client.aclose()


async def _read(broker: StreamBroker, run_id: str, **kw: Any) -> list[Event]:
    async def collect() -> list[Event]:
        return [ev async for ev in broker.subscribe(run_id, **kw)]

    return await asyncio.wait_for(collect(), 10)


async def test_announce_returns_the_stored_event_with_its_replay_id(broker: StreamBroker) -> None:
    announced = await broker.announce("r1", "metadata", b'{"run_id":"r1"}')
    assert announced.alone
    first = announced.event
    broker.publish("r1", "values", b"{}")
    broker.close("r1")
    events = await _read(broker, "r1")
    assert [e.event for e in events] == ["metadata", "values"]
    assert events[0] == first
    # Its id is a real position in the stream: replay after it skips it.
    after = await _read(broker, "r1", after=broker.parse_after(first.id))
    assert [e.event for e in after] == ["values"]


async def test_announce_after_other_events_keeps_them(broker: StreamBroker) -> None:
    # A worker elsewhere may write a run's events before its creator's first one
    # lands (it claimed the run early): reading from the start still sees them.
    broker.publish("r2", "values", b"1")
    await broker.flush()
    announced = await broker.announce("r2", "metadata", b"{}")
    assert not announced.alone  # so its reader starts from the beginning
    first = announced.event
    broker.publish("r2", "values", b"2")
    broker.close("r2")
    events = await _read(broker, "r2")
    assert [(e.event, e.data) for e in events] == [
        ("values", b"1"),
        ("metadata", b"{}"),
        ("values", b"2"),
    ]
    assert events[1].id == first.id
