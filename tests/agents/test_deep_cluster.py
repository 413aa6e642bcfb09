"""The deep agent on the production layout: PostgreSQL + Redis, an API-only server (in this
process, to spare a process start) and two `dockyard worker` processes. The worker running
a deep task is SIGKILLed mid-task; the other worker takes the run over from its last
checkpoint (the plan and the research are not done again), the approvals resume from
langgraph-sdk, and the memory lands in PostgreSQL's store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from dockyard.agents.deep import MEMORY_NAMESPACE
from tests.cluster import Cluster, Proc, cluster
from tests.conftest import LiveServer, eventually

pytestmark = pytest.mark.timeout(180)

PROJECT = Path(__file__).resolve().parent / "deep_held" / "dockyard.yaml"
APPROVE = {"resume": {"decisions": [{"type": "approve"}]}}


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # Short leases: a killed worker's run is taken over within seconds.
    with cluster(
        tmp_path_factory.mktemp("deep-cluster"),
        apis=0,
        workers=2,
        config=PROJECT,
        runs__lease_seconds="1.5",
        runs__drain_seconds="1",
    ) as c:
        yield c


@pytest.fixture(scope="module")
def api(prod: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(
        tmp_path_factory.mktemp("deep-api"),
        config=PROJECT,
        database_url=prod.env["DOCKYARD_DATABASE_URL"],
        redis_url=prod.env["DOCKYARD_REDIS_URL"],
        redis_prefix=prod.env["DOCKYARD_REDIS_PREFIX"],
        runs={"in_process": False, "lease_seconds": 1.5},
    ).start()
    yield server
    server.stop()


@pytest.fixture
async def sdk(api: LiveServer) -> AsyncIterator[LangGraphClient]:
    client = get_client(url=api.url, timeout=60)
    yield client
    await client.aclose()


async def worker_of(prod: Cluster, run_id: str) -> Proc:
    """The worker process holding ``run_id`` (read from the runs table)."""
    async with await psycopg.AsyncConnection.connect(prod.env["DOCKYARD_DATABASE_URL"]) as conn:
        cur = await conn.execute("SELECT worker_id FROM runs WHERE run_id = %s", (run_id,))
        row = await cur.fetchone()
    assert row is not None and row[0], f"run {run_id} is held by no worker"
    return prod.worker_by_pid(int(row[0].split(":")[1]))


async def attempts(prod: Cluster, run_id: str) -> int:
    async with await psycopg.AsyncConnection.connect(prod.env["DOCKYARD_DATABASE_URL"]) as conn:
        cur = await conn.execute("SELECT attempts FROM runs WHERE run_id = %s", (run_id,))
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


def tools_called(messages: list[dict[str, Any]]) -> list[str]:
    return [c["name"] for m in messages if m["type"] == "ai" for c in m.get("tool_calls") or []]


async def test_a_worker_killed_mid_task_loses_nothing(
    prod: Cluster, sdk: LangGraphClient, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    thread_id = (await sdk.threads.create())["thread_id"]
    request = "Write a short report on checkpointing and human approval."
    run = await sdk.runs.create(
        thread_id,
        "deep",
        input={"messages": [{"role": "user", "content": request}]},
        config={"configurable": {"hold": str(go)}},
    )

    async def researched() -> bool:
        state = await sdk.threads.get_state(thread_id)
        return "task" in [m.get("name") for m in state["values"].get("messages", [])]

    # Planned and researched (checkpointed), held before the report: kill its worker.
    await eventually(researched, timeout=60, interval=0.05)
    holder = await worker_of(prod, run["run_id"])
    prod.kill(holder)
    go.touch()

    async def paused() -> bool:
        return (await sdk.runs.get(thread_id, run["run_id"]))["status"] not in (
            "pending",
            "running",
        )

    await eventually(paused, timeout=60, interval=0.05)

    async def thread_settled() -> dict[str, Any] | None:
        # The thread's status is written just after the run's.
        thread = await sdk.threads.get(thread_id)
        return dict(thread) if thread["status"] != "busy" else None

    thread = await eventually(thread_settled, timeout=10, interval=0.05)
    assert thread["status"] == "interrupted"
    assert thread["interrupts"], thread
    assert await attempts(prod, run["run_id"]) == 2  # taken over after the kill

    # The approvals, from langgraph-sdk, on a thread another process started.
    for _ in range(2):
        await sdk.runs.wait(thread_id, "deep", command=APPROVE)
    state = (await sdk.threads.get_state(thread_id))["values"]
    assert (await sdk.threads.get(thread_id))["status"] == "idle"
    # Each step exactly once: the worker that took over did not plan or research again.
    assert tools_called(state["messages"]) == [
        "write_todos",
        "task",
        "write_file",
        "execute",
        "write_file",
        "write_todos",
    ]
    assert [t["status"] for t in state["todos"]] == ["completed"] * 4
    assert state["files"]["/report.md"]["content"].startswith("# Checkpointing")
    found = await sdk.store.search_items((MEMORY_NAMESPACE, "shared"))
    assert [item["key"] for item in found["items"]] == ["/checkpointing-human-approval.md"]
