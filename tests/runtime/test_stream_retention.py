"""Finished runs' streams in the embedded server: kept for replay within a byte budget."""

from __future__ import annotations

from pathlib import Path

import pytest
from langgraph_sdk import get_client

from tests.conftest import LiveServer

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize("budget", [0, 1_000_000])
async def test_join_after_the_stream_is_forgotten_still_gives_the_result(
    tmp_path: Path, budget: int
) -> None:
    server = LiveServer(tmp_path, runs={"stream_retention_max_bytes": budget}).start()
    try:
        client = get_client(url=server.url)
        tid = (await client.threads.create())["thread_id"]
        run = await client.runs.create(tid, "trivial", input={"x": 5})
        assert await client.runs.join(tid, run["run_id"]) == {"x": 5}
        replay = [p.event async for p in client.runs.join_stream(tid, run["run_id"])]
        if budget:
            assert replay[0] == "metadata" and replay[-1] == "end" and "values" in replay
        else:  # over the budget: forgotten, as after runs.stream_retention_seconds
            assert replay == []
        assert await client.runs.join(tid, run["run_id"]) == {"x": 5}
        assert (await client.runs.get(tid, run["run_id"]))["status"] == "success"
        await client.aclose()
    finally:
        server.stop()
