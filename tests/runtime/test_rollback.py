"""Rollback, checked where it matters: in the checkpointer, not only in the run's 404.

A run rolled back (cancel with ``action=rollback``, or ``multitask_strategy=rollback``)
leaves no checkpoint whose metadata names it, and the thread's earlier checkpoints are
untouched; a *queued* run cancelled with ``action=rollback`` is deleted without running.
On every deployment (``live_server``); tests/runtime/test_rollback_cluster.py does the
same across processes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from tests.conftest import LiveServer, eventually

LONG = 30.0  # a sleepy run that long is always cancelled mid-run


async def checkpoint_rows(saver: Any, thread_id: str) -> list[tuple[str, str, Any]]:
    """(namespace, checkpoint id, run id) of every checkpoint of the thread in ``saver``."""
    config: Any = {"configurable": {"thread_id": thread_id}}
    return [
        (
            t.config["configurable"].get("checkpoint_ns", ""),
            t.config["configurable"]["checkpoint_id"],
            t.metadata.get("run_id"),
        )
        async for t in saver.alist(config)
    ]


async def checkpoints(live_server: LiveServer, thread_id: str) -> list[tuple[str, str, Any]]:
    """The thread's checkpoint rows, read through the server's own checkpointer (on its
    loop, where its connections live)."""
    saver = live_server.app.state.runtime.storage.checkpointer
    future = asyncio.run_coroutine_threadsafe(checkpoint_rows(saver, thread_id), live_server.loop)
    return await asyncio.wrap_future(future)


async def of_run(live_server: LiveServer, thread_id: str, run_id: str) -> list[Any]:
    return [c for c in await checkpoints(live_server, thread_id) if c[2] == run_id]


async def gone(client: LangGraphClient, thread_id: str, run_id: str) -> bool:
    try:
        await client.runs.get(thread_id, run_id)
    except httpx.HTTPStatusError as e:
        return e.response.status_code == 404
    return False


async def thread_with_history(
    client: LangGraphClient, live_server: LiveServer
) -> tuple[str, list[Any], str]:
    """A thread with one finished run: its id, its checkpoints, and the run's id."""
    tid = (await client.threads.create())["thread_id"]
    done = await client.runs.wait(tid, "sleepy", input={"delay": 0})
    assert done["steps"] == ["slept"]
    before = await checkpoints(live_server, tid)
    (earlier,) = await client.runs.list(tid)
    assert before and {c[2] for c in before} == {earlier["run_id"]}
    return tid, before, earlier["run_id"]


async def started(client: LangGraphClient, live_server: LiveServer, tid: str) -> dict[str, Any]:
    """A long run on the thread, once the checkpointer holds checkpoints of it."""
    run = await client.runs.create(tid, "sleepy", input={"delay": LONG})

    async def checkpointed() -> bool:
        return bool(await of_run(live_server, tid, run["run_id"]))

    await eventually(checkpointed, timeout=30)
    assert (await client.runs.get(tid, run["run_id"]))["status"] == "running"
    return run


async def test_cancel_rollback_leaves_no_checkpoint(
    client: LangGraphClient, live_server: LiveServer
) -> None:
    tid, before, earlier = await thread_with_history(client, live_server)
    run = await started(client, live_server, tid)
    await client.runs.cancel(tid, run["run_id"], wait=True, action="rollback")
    assert await gone(client, tid, run["run_id"])
    assert await of_run(live_server, tid, run["run_id"]) == []
    assert await checkpoints(live_server, tid) == before
    assert [r["run_id"] for r in await client.runs.list(tid)] == [earlier]
    assert (await client.threads.get(tid))["status"] == "idle"
    assert (await client.threads.get_state(tid))["values"]["steps"] == ["slept"]


async def test_rollback_strategy_leaves_no_checkpoint(
    client: LangGraphClient, live_server: LiveServer
) -> None:
    tid, before, earlier = await thread_with_history(client, live_server)
    first = await started(client, live_server, tid)
    second = await client.runs.create(
        tid, "sleepy", input={"delay": 0}, multitask_strategy="rollback"
    )
    await client.runs.join(tid, second["run_id"])
    assert await gone(client, tid, first["run_id"])
    assert await of_run(live_server, tid, first["run_id"]) == []
    after = await checkpoints(live_server, tid)
    assert [c for c in after if c[2] != second["run_id"]] == before
    assert await of_run(live_server, tid, second["run_id"])
    assert [r["run_id"] for r in await client.runs.list(tid)] == [
        second["run_id"],
        earlier,
    ]


@pytest.mark.parametrize("wait", [False, True])
async def test_cancel_rollback_of_a_queued_run_deletes_it(
    client: LangGraphClient, live_server: LiveServer, wait: bool
) -> None:
    tid, before, earlier = await thread_with_history(client, live_server)
    running = await started(client, live_server, tid)
    queued = await client.runs.create(tid, "sleepy", input={"delay": 0})
    assert (await client.runs.get(tid, queued["run_id"]))["status"] == "pending"
    await client.runs.cancel(tid, queued["run_id"], wait=wait, action="rollback")
    # Gone at once: a queued run is deleted where it waits, not when something runs it.
    assert await gone(client, tid, queued["run_id"])
    assert [r["run_id"] for r in await client.runs.list(tid)] == [
        running["run_id"],
        earlier,
    ]
    # The running run goes on; when it ends, the queued one has not run in its place.
    await client.runs.cancel(tid, running["run_id"], wait=True)
    assert (await client.runs.get(tid, running["run_id"]))["status"] == "interrupted"
    assert await of_run(live_server, tid, queued["run_id"]) == []
    after = await checkpoints(live_server, tid)
    assert [c for c in after if c[2] != running["run_id"]] == before
    assert await gone(client, tid, queued["run_id"])
    assert (await client.threads.get(tid))["status"] in ("idle", "interrupted")
