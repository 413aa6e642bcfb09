"""langgraph.json ``checkpointer.ttl`` and ``store.ttl``, on SQLite and PostgreSQL: the
sweeper deletes a thread past its ttl (strategy ``delete``) or keeps only its newest
checkpoint (``keep_latest``); store items past theirs go."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import NotFoundError

from tests.conftest import LiveServer, eventually

PLATFORM = Path(__file__).parent.parent / "fixtures" / "platform" / "langgraph.json"

# The fixture's ttls shortened: 0.6 s to expiry, a sweep every 0.3 s. The strategy
# (keep_latest) is the file's.
FAST = {
    "checkpointer": {"ttl": {"default_ttl": 0.01, "sweep_interval_minutes": 0.005}},
    "store": {"ttl": {"default_ttl": 0.01, "sweep_interval_minutes": 0.005}},
    "http": {"disable_store": False},
}


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    with contextlib.ExitStack() as stack:
        extra: dict[str, Any] = {}
        if request.param == "postgres":
            from tests.pg import fresh_database_sync

            extra["database_url"] = stack.enter_context(fresh_database_sync())
        live = LiveServer(tmp_path, PLATFORM, **FAST, **extra).start()
        yield live
        live.stop()


async def on_server(server: LiveServer, coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` on the server's loop (its connections belong there)."""
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, server.loop))


async def checkpoints(server: LiveServer, thread_id: str) -> list[Any]:
    saver = server.app.state.runtime.storage.checkpointer

    async def collect() -> list[Any]:
        return [t async for t in saver.alist({"configurable": {"thread_id": thread_id}})]

    result: list[Any] = await on_server(server, collect())
    return result


async def test_keep_latest_prunes_to_the_newest_checkpoint(server: LiveServer) -> None:
    client = get_client(url=server.url + "/api")
    tid = (await client.threads.create())["thread_id"]  # the configured ttl
    ttl = (await client.http.get(f"/threads/{tid}", params={"include": "ttl"}))["ttl"]
    assert (ttl["strategy"], ttl["ttl_minutes"]) == ("keep_latest", 0.01)
    await client.runs.wait(tid, "hitl", input={"x": 1})
    before = await client.threads.get_history(tid)

    async def pruned() -> bool:
        return len(await checkpoints(server, tid)) == 1

    await eventually(pruned)
    after = await client.threads.get_history(tid)
    assert [h["checkpoint"] for h in after] == [before[0]["checkpoint"]]
    assert (await client.threads.get(tid))["status"] == "interrupted"
    out = await client.runs.wait(tid, "hitl", command={"resume": "yes"})
    assert out["log"] == ["prepare", "ask", "finish"]  # the latest checkpoint was enough
    await client.aclose()


async def test_delete_strategy_removes_the_thread_and_its_checkpoints(
    server: LiveServer,
) -> None:
    client = get_client(url=server.url + "/api")
    tid = (await client.threads.create(ttl={"strategy": "delete", "ttl": 0.01}))["thread_id"]
    keep = (await client.threads.create(ttl={"strategy": "delete", "ttl": 60}))["thread_id"]
    await client.runs.wait(tid, "trivial", input={"x": 1})
    await client.runs.wait(keep, "trivial", input={"x": 1})

    async def gone() -> bool:
        try:
            await client.threads.get(tid)
        except NotFoundError:
            return True
        return False

    await eventually(gone)
    assert await checkpoints(server, tid) == []
    assert await client.runs.list(keep) and len(await checkpoints(server, keep)) > 1
    await client.aclose()


async def test_store_items_expire_by_the_default_ttl(server: LiveServer) -> None:
    client = get_client(url=server.url + "/api")
    await client.store.put_item(["ttl"], "short", {"v": 1})  # store.ttl.default_ttl
    await client.store.put_item(["ttl"], "long", {"v": 2}, ttl=60)

    async def gone() -> bool:
        try:
            await client.store.get_item(["ttl"], "short", refresh_ttl=False)
        except NotFoundError:
            return True
        return False

    await eventually(gone)
    assert (await client.store.get_item(["ttl"], "long"))["value"] == {"v": 2}
    await client.aclose()
