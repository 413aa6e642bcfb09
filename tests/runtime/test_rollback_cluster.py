"""Rollback across processes (2 API-only servers, 2 workers, PostgreSQL and Redis), checked
in the checkpointer: the rolled-back run's checkpoints are gone, whichever process ran it
and whichever API process was asked; a queued run cancelled with rollback is deleted."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from tests.cluster import Cluster, cluster
from tests.conftest import eventually
from tests.runtime.test_rollback import checkpoint_rows, gone

pytestmark = pytest.mark.timeout(300)

LONG = 30.0


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("rollback-cluster")) as c:
        yield c


@pytest.fixture
async def clients(prod: Cluster) -> AsyncIterator[tuple[LangGraphClient, LangGraphClient]]:
    a, b = (get_client(url=api.url, timeout=60) for api in prod.apis)
    yield a, b
    await a.aclose()
    await b.aclose()


@pytest.fixture
async def saver(prod: Cluster) -> AsyncIterator[AsyncPostgresSaver]:
    """LangGraph's own checkpointer over the cluster's database."""
    async with AsyncPostgresSaver.from_conn_string(prod.env["DOCKYARD_DATABASE_URL"]) as s:
        yield s


async def checkpoints(saver: AsyncPostgresSaver, thread_id: str) -> list[tuple[str, str, Any]]:
    return await checkpoint_rows(saver, thread_id)


async def of_run(saver: AsyncPostgresSaver, thread_id: str, run_id: str) -> list[Any]:
    return [c for c in await checkpoints(saver, thread_id) if c[2] == run_id]


async def history(client: LangGraphClient, saver: AsyncPostgresSaver) -> tuple[str, list[Any]]:
    """A thread with one finished run, and its checkpoints."""
    tid = (await client.threads.create())["thread_id"]
    assert (await client.runs.wait(tid, "sleepy", input={"delay": 0}))["steps"] == ["slept"]
    before = await checkpoints(saver, tid)
    assert before
    return tid, before


async def started(client: LangGraphClient, saver: AsyncPostgresSaver, tid: str) -> str:
    """A long run, once a worker has checkpointed it."""
    run_id: str = (await client.runs.create(tid, "sleepy", input={"delay": LONG}))["run_id"]

    async def checkpointed() -> bool:
        return bool(await of_run(saver, tid, run_id))

    await eventually(checkpointed, timeout=30)
    assert (await client.runs.get(tid, run_id))["status"] == "running"
    return run_id


async def test_cancel_rollback_on_the_other_api_process(
    clients: tuple[LangGraphClient, LangGraphClient], saver: AsyncPostgresSaver
) -> None:
    a, b = clients
    tid, before = await history(a, saver)
    run_id = await started(a, saver, tid)
    await b.runs.cancel(tid, run_id, wait=True, action="rollback")
    assert await gone(a, tid, run_id) and await gone(b, tid, run_id)
    assert await of_run(saver, tid, run_id) == []
    assert await checkpoints(saver, tid) == before
    assert (await a.threads.get_state(tid))["values"]["steps"] == ["slept"]


async def test_rollback_strategy_across_processes(
    clients: tuple[LangGraphClient, LangGraphClient], saver: AsyncPostgresSaver
) -> None:
    a, b = clients
    tid, before = await history(a, saver)
    first = await started(a, saver, tid)
    second = await b.runs.create(tid, "sleepy", input={"delay": 0}, multitask_strategy="rollback")
    await b.runs.join(tid, second["run_id"])
    assert await gone(a, tid, first)
    assert await of_run(saver, tid, first) == []
    after = await checkpoints(saver, tid)
    assert [c for c in after if c[2] != second["run_id"]] == before
    assert await of_run(saver, tid, second["run_id"])


async def test_cancel_rollback_of_a_queued_run_on_the_other_api_process(
    clients: tuple[LangGraphClient, LangGraphClient], saver: AsyncPostgresSaver
) -> None:
    a, b = clients
    tid, before = await history(a, saver)
    running = await started(a, saver, tid)
    queued = (await a.runs.create(tid, "sleepy", input={"delay": 0}))["run_id"]
    assert (await b.runs.get(tid, queued))["status"] == "pending"
    await b.runs.cancel(tid, queued, action="rollback")
    assert await gone(a, tid, queued) and await gone(b, tid, queued)
    await a.runs.cancel(tid, running, wait=True)
    assert (await b.runs.get(tid, running))["status"] == "interrupted"
    assert await of_run(saver, tid, queued) == []
    after = await checkpoints(saver, tid)
    assert [c for c in after if c[2] != running] == before
    assert await gone(a, tid, queued)
