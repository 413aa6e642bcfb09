"""Both stream brokers (in-process and Redis) under the same expectations."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
import types
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from dockyard.runtime.broker import Event, MemoryBroker, StreamBroker
from dockyard.runtime.redis_broker import RedisBroker
from dockyard.runtime.serde import dumps
from tests.conftest import eventually
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
        await b.start()
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
    announced = broker.announce("r1", "metadata", b'{"run_id":"r1"}')
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
    # lands (it claimed the run at once): the creator's reader still sees them all.
    broker.publish("r2", "values", b"1")
    await broker.flush()
    announced = broker.announce("r2", "metadata", b"{}")
    broker.publish("r2", "values", b"2")
    broker.close("r2")
    first = announced.event
    if announced.alone:
        seen = await _read(broker, "r2", after=first.id)
    else:  # read from the start, without the creator's own copy
        seen = [e for e in await _read(broker, "r2") if e.id != first.id]
    assert [(e.event, e.data) for e in seen] == [("values", b"1"), ("values", b"2")]


async def test_the_first_event_is_stored_once_whoever_writes_it_first() -> None:
    # Creator and claiming worker both write a run's first event under the same id:
    # the stream holds it once, first, and the refused copy does not stall the writer.
    with fresh_prefix() as prefix:
        client = Redis.from_url(REDIS_URL)
        worker, creator = RedisBroker(client, prefix), RedisBroker(client, prefix)
        await worker.start()
        await creator.start()
        try:
            worker.announce("r3", "metadata", b"{}")
            worker.publish("r3", "values", b"1")
            await worker.flush()
            first = creator.announce("r3", "metadata", b"{}").event
            creator.publish("r3", "values", b"2")
            creator.close("r3")
            await creator.flush()
            events = await _read(creator, "r3")
            assert [(e.id, e.event) for e in events[:1]] == [(first.id, "metadata")]
            assert [(e.event, e.data) for e in events[1:]] == [
                ("values", b"1"),
                ("values", b"2"),
            ]
        finally:
            await worker.stop()
            await creator.stop()
            await client.aclose()


async def test_memory_broker_keeps_finished_runs_for_replay_until_retention_ends() -> None:
    broker = MemoryBroker(retention_seconds=0.2)
    broker.publish("r", "values", b"1")
    broker.publish("r", "values", b"2")
    broker.close("r")
    assert await broker.has("r")
    assert [(e.id, e.data) for e in await _read(broker, "r", after="1")] == [("2", b"2")]
    broker.publish("r", "values", b"late")  # after close: not stored
    assert [e.data for e in await _read(broker, "r")] == [b"1", b"2"]

    async def forgotten() -> bool:
        return not await broker.has("r")

    await eventually(forgotten, timeout=5)  # once the 0.2 s retention is over


def _tracked_from(root: object) -> int:
    """How many GC-tracked objects ``root`` reaches (classes, modules and functions are
    shared with everything else, so the walk stops there)."""
    seen: set[int] = set()
    stack = [root]
    tracked = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type | types.ModuleType | types.FunctionType):
            continue
        seen.add(id(obj))
        tracked += gc.is_tracked(obj)
        stack.extend(gc.get_referents(obj))
    return tracked


async def test_memory_broker_finished_runs_leave_nothing_for_the_garbage_collector() -> None:
    # Minutes of finished runs stay in memory for replay; as GC-tracked objects they
    # made every full collection of a busy server walk them (pauses of 100+ ms).
    broker = MemoryBroker()

    def finish_runs(start: int, stop: int) -> None:
        for i in range(start, stop):
            broker.announce(f"run-{i}", "metadata", b'{"run_id": "x"}')
            broker.publish(f"run-{i}", "values", b'{"value": "ping"}')
            broker.close(f"run-{i}")

    finish_runs(0, 100)  # first use: whatever it imports or caches is not counted
    gc.collect()  # a tuple of untracked values is untracked when a collection sees it
    before = _tracked_from(broker)
    finish_runs(100, 2000)
    gc.collect()
    # Counted from the broker, not over the whole process: other tests' leftovers being
    # collected meanwhile (and logged) must not count.
    assert _tracked_from(broker) - before < 100
    events = await _read(broker, "run-1999")
    assert [(e.id, e.event) for e in events] == [("1", "metadata"), ("2", "values")]


async def test_memory_broker_keeps_only_the_bytes_of_each_event() -> None:
    # orjson returns its 4 KiB write buffer as the bytes object: stored as they come,
    # minutes of finished runs grew the server by ~20 KiB a run.
    broker = MemoryBroker()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(1000):
            broker.announce(f"run-{i}", "metadata", dumps({"run_id": f"run-{i}"}))
            broker.publish(f"run-{i}", "values", dumps({"value": "ping"}))
            broker.close(f"run-{i}")
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 1000 * 1024, f"{grown // 1000} bytes per finished run"


async def test_memory_broker_forgets_the_oldest_finished_runs_over_its_byte_budget() -> None:
    broker = MemoryBroker(retention_max_bytes=250)
    for i in range(3):
        broker.publish(f"r{i}", "values", b"x" * 100)
        broker.close(f"r{i}")
    # 3 x 106 bytes of events: the oldest goes, the newer two stay replayable.
    assert [await broker.has(f"r{i}") for i in range(3)] == [False, True, True]
    assert [e.data for e in await _read(broker, "r2")] == [b"x" * 100]
    broker.publish("big", "values", b"y" * 1000)  # alone over the budget: not kept
    broker.close("big")
    assert not await broker.has("big")
    assert not await broker.has("r1") and not await broker.has("r2")
