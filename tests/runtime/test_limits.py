"""Periodic work and limits: thread ttl sweep, run timeout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import NotFoundError

from tests.conftest import LiveServer, eventually


@pytest.fixture
def fast_sweep_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path, threads={"sweep_interval_seconds": 0.2}).start()
    yield server
    server.stop()


async def test_expired_threads_are_swept(fast_sweep_server: LiveServer) -> None:
    client = get_client(url=fast_sweep_server.url)
    short = await client.threads.create(ttl={"strategy": "delete", "ttl": 0.005})  # 0.3 s
    keep = await client.threads.create(ttl={"strategy": "delete", "ttl": 60})
    plain = await client.threads.create()
    await client.runs.wait(short["thread_id"], "trivial", input={"x": 1})

    async def short_gone() -> bool:
        try:
            await client.threads.get(short["thread_id"])
        except NotFoundError:
            return True
        return False

    await eventually(short_gone, timeout=10)
    assert (await client.threads.get(keep["thread_id"]))["thread_id"] == keep["thread_id"]
    assert (await client.threads.get(plain["thread_id"]))["thread_id"] == plain["thread_id"]
    cp = fast_sweep_server.app.state.runtime.storage.checkpointer
    assert cp.get_tuple({"configurable": {"thread_id": short["thread_id"]}}) is None
    await client.aclose()


async def test_run_past_its_timeout_ends_as_timeout(tmp_path: Path) -> None:
    server = LiveServer(tmp_path, runs={"timeout_seconds": 0.3}).start()
    try:
        client = get_client(url=server.url)
        tid = (await client.threads.create())["thread_id"]
        parts = [p async for p in client.runs.stream(tid, "slow", input={"delay": 5})]
        assert parts[-1].event == "error"
        assert parts[-1].data == {"error": "TimeoutError", "message": "run exceeded 0.3s"}
        run = (await client.runs.list(tid))[0]
        assert run["status"] == "timeout"
        assert (await client.runs.wait(tid, "slow", input={"delay": 0}))["steps"] == ["one", "two"]
        await client.aclose()
    finally:
        server.stop()
