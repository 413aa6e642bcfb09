"""A run executed in the API process can end before that process has sent any of its
events to Redis; whoever follows it then must still see it to the end."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from langgraph_sdk import get_client

from dockyard.runtime.redis_broker import RedisBroker
from tests.conftest import LiveServer
from tests.pg import fresh_database_sync
from tests.redis_server import REDIS_URL, fresh_prefix

pytestmark = pytest.mark.asyncio


@pytest.fixture
def lagging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    """A server over PostgreSQL + Redis whose Redis writes land 0.4 s late and whose
    checks for a stream take 0.2 s: its in-process runs are settled in PostgreSQL
    before their stream exists, and before a follower asks for their status."""
    write, has = RedisBroker._write, RedisBroker.has

    async def late_write(self: RedisBroker, *args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0.4)
        await write(self, *args, **kwargs)

    async def slow_has(self: RedisBroker, run_id: str) -> bool:
        found = await has(self, run_id)
        await asyncio.sleep(0.2)
        return found

    monkeypatch.setattr(RedisBroker, "_write", late_write)
    monkeypatch.setattr(RedisBroker, "has", slow_has)
    with fresh_database_sync() as db_url, fresh_prefix() as prefix:
        server = LiveServer(
            tmp_path, database_url=db_url, redis_url=REDIS_URL, redis_prefix=prefix
        ).start()
        try:
            yield server
        finally:
            server.stop()


async def test_a_chat_completion_waits_for_its_run_stream(lagging: LiveServer) -> None:
    async with openai.AsyncOpenAI(
        base_url=f"{lagging.url}/v1", api_key="unused", max_retries=0
    ) as oai:
        for _ in range(3):
            done = await oai.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "hi"}]
            )
            assert done.choices[0].finish_reason == "stop"
            assert done.choices[0].message.content


async def test_join_stream_of_a_run_that_just_ended_replays_it(lagging: LiveServer) -> None:
    client = get_client(url=lagging.url, timeout=30)
    tid = (await client.threads.create())["thread_id"]
    run = await client.runs.create(tid, "trivial", input={"x": 1})
    await asyncio.sleep(0.1)  # the run is over; its events are still on their way
    assert (await client.runs.get(tid, run["run_id"]))["status"] == "success"
    events = [p.event async for p in client.runs.join_stream(tid, run["run_id"])]
    assert events[0] == "metadata" and events[-1] == "end", events
    await client.aclose()
