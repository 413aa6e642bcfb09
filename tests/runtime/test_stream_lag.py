"""A run executed in the API process can end before that process has sent any of its
events to Redis; whoever follows it then must still see it to the end."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from langgraph_sdk import get_client

from dockyard.runtime.redis_broker import RedisBroker
from tests.conftest import LiveServer, eventually
from tests.pg import fresh_database_sync
from tests.redis_server import REDIS_URL, fresh_prefix

pytestmark = pytest.mark.asyncio


class Lagging:
    """A server over PostgreSQL + Redis whose Redis writes land 0.4 s late and whose
    checks for a stream take 0.2 s: its in-process runs are settled in PostgreSQL
    before their stream exists, and before a follower asks for their status. A test
    can also hold the writes back until it lets them go."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.url = server.url
        self.writes = threading.Event()  # clear: the server's Redis writes wait
        self.writes.set()
        self.missed: set[str] = set()  # runs a stream check found no stream for
        self.flushes = 0  # waits for the queued writes to go out


@pytest.fixture
def lagging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lagging]:
    write, has, flush = RedisBroker._write, RedisBroker.has, RedisBroker.flush
    lag: Lagging | None = None

    async def late_write(self: RedisBroker, *args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0.4)
        if lag is not None and not lag.writes.is_set():  # the test holds the writes
            await asyncio.to_thread(lag.writes.wait)
        await write(self, *args, **kwargs)

    async def slow_has(self: RedisBroker, run_id: str) -> bool:
        found = await has(self, run_id)
        if not found and lag is not None:
            lag.missed.add(run_id)
        await asyncio.sleep(0.2)
        return found

    async def counted_flush(self: RedisBroker) -> None:
        if lag is not None:
            lag.flushes += 1
        await flush(self)

    monkeypatch.setattr(RedisBroker, "_write", late_write)
    monkeypatch.setattr(RedisBroker, "flush", counted_flush)
    monkeypatch.setattr(RedisBroker, "has", slow_has)
    with fresh_database_sync() as db_url, fresh_prefix() as prefix:
        server = LiveServer(
            tmp_path, database_url=db_url, redis_url=REDIS_URL, redis_prefix=prefix
        ).start()
        lag = Lagging(server)
        try:
            yield lag
        finally:
            lag.writes.set()
            server.stop()


async def test_a_chat_completion_waits_for_its_run_stream(lagging: Lagging) -> None:
    async with openai.AsyncOpenAI(
        base_url=f"{lagging.url}/v1", api_key="unused", max_retries=0
    ) as oai:
        for _ in range(3):
            done = await oai.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "hi"}]
            )
            assert done.choices[0].finish_reason == "stop"
            assert done.choices[0].message.content


async def test_join_stream_of_a_run_that_just_ended_replays_it(lagging: Lagging) -> None:
    client = get_client(url=lagging.url, timeout=30)
    tid = (await client.threads.create())["thread_id"]
    lagging.writes.clear()  # the run's events stay in the API process until let go
    run = await client.runs.create(tid, "trivial", input={"x": 1})

    async def ended() -> bool:
        return (await client.runs.get(tid, run["run_id"]))["status"] not in ("pending", "running")

    await eventually(ended)  # the run is over; its events are still on their way
    assert (await client.runs.get(tid, run["run_id"]))["status"] == "success"

    async def join() -> list[str]:
        return [p.event async for p in client.runs.join_stream(tid, run["run_id"])]

    flushes = lagging.flushes
    joined = asyncio.create_task(join())

    def waiting_for_the_writes() -> bool:
        # The join found no stream and now waits for what is queued (or gave up).
        return joined.done() or (run["run_id"] in lagging.missed and lagging.flushes > flushes)

    await eventually(waiting_for_the_writes)
    lagging.writes.set()
    events = await asyncio.wait_for(joined, 30)
    assert events[0] == "metadata" and events[-1] == "end", events
    await client.aclose()
