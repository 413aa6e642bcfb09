"""2 API-only servers + 2 workers over PostgreSQL and Redis, driven through langgraph-sdk.

Runs created on one API process execute in a worker and stream from the other
API process; multitask strategies and cancel behave as in one process; a worker
killed mid-run loses nothing.
"""

from __future__ import annotations

import asyncio
import random
import signal
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.schema import Config

from tests.cluster import Cluster, cluster
from tests.conftest import eventually

pytestmark = pytest.mark.timeout(300)

# Short leases so that a killed worker's runs are taken over within seconds.
LEASE_SECONDS = "1.5"


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster(
        tmp_path_factory.mktemp("cluster"),
        runs__lease_seconds=LEASE_SECONDS,
        runs__drain_seconds="1",
        crons__poll_interval_seconds="0.2",
    ) as c:
        yield c


@pytest.fixture
async def clients(prod: Cluster) -> AsyncIterator[tuple[LangGraphClient, LangGraphClient]]:
    a, b = (get_client(url=api.url, timeout=60) for api in prod.apis)
    yield a, b
    await a.aclose()
    await b.aclose()


def hold(go: Path, step: str | None = None) -> Config:
    """A run config that holds the run (at ``step`` of "steps") until the file ``go``
    exists: whatever the test does meanwhile finds the run still busy."""
    configurable = {"hold": str(go)}
    if step is not None:
        configurable["hold_step"] = step
    return {"configurable": configurable}


def messages(state: dict[str, Any]) -> list[str]:
    return [m["content"] for m in state["values"]["messages"]]


async def wait_status(client: LangGraphClient, tid: str, rid: str, *wanted: str) -> dict[str, Any]:
    async def check() -> Any:
        run = await client.runs.get(tid, rid)
        return run if run["status"] in wanted else None

    got: dict[str, Any] = await eventually(check, timeout=30)
    return got


async def test_run_created_on_one_api_streams_from_the_other(
    clients: tuple[LangGraphClient, LangGraphClient],
) -> None:
    a, b = clients
    tid = (await a.threads.create())["thread_id"]
    run = await a.runs.create(
        tid,
        "steps",
        input={"messages": [{"role": "user", "content": "hi"}], "delay": 0.2},
        stream_mode=["updates", "values"],
    )
    parts = [p async for p in b.runs.join_stream(tid, run["run_id"], stream_mode="updates")]
    assert [p.event for p in parts][-1] == "end"
    updates = [p.data for p in parts if p.event == "updates"]
    assert [next(iter(u)) for u in updates] == ["one", "two", "three"]
    # Replay from any API process, after any event id it handed out.
    first_update = next(p for p in parts if p.event == "updates")
    replay = [
        p
        async for p in a.runs.join_stream(
            tid, run["run_id"], stream_mode="updates", last_event_id=first_update.id
        )
    ]
    assert [next(iter(p.data)) for p in replay if p.event == "updates"] == ["two", "three"]
    state = await b.threads.get_state(tid)
    assert messages(state) == ["hi", "one", "two", "three"]
    assert (await a.runs.get(tid, run["run_id"]))["status"] == "success"


async def test_wait_and_stateless_runs_across_processes(
    clients: tuple[LangGraphClient, LangGraphClient],
) -> None:
    a, b = clients
    results = await asyncio.gather(
        *(c.runs.wait(None, "trivial", input={"x": i}) for i, c in enumerate([a, b] * 5))
    )
    assert [r["x"] for r in results] == list(range(10))
    streamed = [p.event async for p in b.runs.stream(None, "trivial", input={"x": 1})]
    assert streamed[0] == "metadata" and streamed[-1] == "end"


async def test_multitask_strategies_across_processes(
    clients: tuple[LangGraphClient, LangGraphClient],
) -> None:
    a, b = clients
    tid = (await a.threads.create())["thread_id"]
    first = await a.runs.create(tid, "sleepy", input={"delay": 30})
    await wait_status(a, tid, first["run_id"], "running")
    with pytest.raises(httpx.HTTPStatusError) as e:
        await b.runs.create(tid, "sleepy", input={"delay": 0.1}, multitask_strategy="reject")
    assert e.value.response.status_code == 409
    # interrupt: the running run (in some worker) stops, the new one runs.
    second = await b.runs.create(tid, "sleepy", input={"delay": 30}, multitask_strategy="interrupt")
    assert (await wait_status(a, tid, first["run_id"], "interrupted"))["status"]
    await wait_status(b, tid, second["run_id"], "running")
    # rollback: the running run and its checkpoints are gone.
    third = await a.runs.create(tid, "sleepy", input={"delay": 0.2}, multitask_strategy="rollback")

    async def second_gone() -> bool:
        try:
            await b.runs.get(tid, second["run_id"])
        except httpx.HTTPStatusError as err:
            return err.response.status_code == 404
        return False

    await eventually(second_gone, timeout=30)
    await wait_status(a, tid, third["run_id"], "success")
    # enqueue: both run, one after the other.
    r4 = await a.runs.create(tid, "sleepy", input={"delay": 0.3})
    r5 = await b.runs.create(tid, "sleepy", input={"delay": 0.1}, multitask_strategy="enqueue")
    done4 = await wait_status(a, tid, r4["run_id"], "success")
    done5 = await wait_status(b, tid, r5["run_id"], "success")
    assert done5["started_at"] >= done4["ended_at"]


async def test_concurrent_resumes_on_two_api_processes_never_both_execute(
    clients: tuple[LangGraphClient, LangGraphClient], tmp_path: Path
) -> None:
    a, b = clients
    # approve_slow holds its last step until the test lets it go: the resumes overlap.
    for i in range(3):
        go = tmp_path / f"go-{i}"
        tid = (await a.threads.create())["thread_id"]
        await a.runs.wait(tid, "approve_slow", input={"x": 1})

        async def resume(c: LangGraphClient, answer: str, tid: str = tid, go: Path = go) -> Any:
            try:
                return await c.runs.wait(
                    tid,
                    "approve_slow",
                    command={"resume": answer},
                    multitask_strategy="reject",
                    config=hold(go),
                )
            except httpx.HTTPStatusError as e:
                assert e.response.status_code == 409
                return "rejected"

        resumes = [asyncio.create_task(resume(c, n)) for c, n in ((a, "a"), (b, "b"))]
        # One answer comes while the other run is held (none if both were taken).
        await asyncio.wait(resumes, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        go.touch()
        results = await asyncio.gather(*resumes)
        assert results.count("rejected") == 1, results
        state = await b.threads.get_state(tid)
        assert state["values"]["log"] == ["prepare", "ask", "slow_finish"]
        assert len(await a.runs.list(tid)) == 2


async def test_cancel_on_another_api_process(
    clients: tuple[LangGraphClient, LangGraphClient],
) -> None:
    a, b = clients
    tid = (await a.threads.create())["thread_id"]
    run = await a.runs.create(tid, "sleepy", input={"delay": 30})
    await wait_status(a, tid, run["run_id"], "running")
    await b.runs.cancel(tid, run["run_id"], wait=True)
    got = await a.runs.get(tid, run["run_id"])
    assert got["status"] == "interrupted"
    assert (await a.threads.get(tid))["status"] == "interrupted"  # as in one process
    # The stream of a cancelled run ends (on every API process).
    events = [p.event async for p in b.runs.join_stream(tid, run["run_id"])]
    assert events[-1] == "end"
    # A rollback cancel removes the run.
    run2 = await b.runs.create(tid, "sleepy", input={"delay": 30})
    await wait_status(b, tid, run2["run_id"], "running")
    await a.runs.cancel(tid, run2["run_id"], wait=True, action="rollback")
    with pytest.raises(httpx.HTTPStatusError) as e:
        await b.runs.get(tid, run2["run_id"])
    assert e.value.response.status_code == 404


async def test_sigterm_drains_then_hands_back(
    prod: Cluster, clients: tuple[LangGraphClient, LangGraphClient], tmp_path: Path
) -> None:
    a, _ = clients
    tid = (await a.threads.create())["thread_id"]
    go = tmp_path / "go"  # the run cannot end before the drain does
    long = await a.runs.create(tid, "sleepy", input={"delay": 0.1}, config=hold(go))
    await wait_status(a, tid, long["run_id"], "running")
    holder = await _worker_of(prod, long["run_id"])
    prod.kill(holder, signal.SIGTERM)  # drain_seconds=1: it hands the run back
    go.touch()
    prod.wait_ready(prod.start_worker())
    done = await wait_status(a, tid, long["run_id"], "success", "error")
    assert done["status"] == "success"
    assert done["attempts"] == 2
    state = await a.threads.get_state(tid)
    assert state["values"]["steps"] == ["slept"]


async def test_cron_fires_once_per_slot_across_four_processes(
    clients: tuple[LangGraphClient, LangGraphClient],
) -> None:
    """Every process (2 API + 2 workers) polls for due crons; each slot makes one run."""
    a, b = clients
    tid = (await a.threads.create())["thread_id"]
    cron = await b.crons.create_for_thread(
        tid, "trivial", schedule="* * * * * *", input={"x": 1}, multitask_strategy="enqueue"
    )
    created = datetime.fromisoformat(cron["created_at"])

    async def fired() -> tuple[list[Any], int] | None:
        runs = await a.runs.list(tid, limit=100)
        # Slots due so far: the whole seconds after the cron's creation, up to now.
        slots = int(datetime.now(UTC).timestamp()) - int(created.timestamp())
        return (runs, slots) if len(runs) >= 4 else None

    runs, slots = await eventually(fired, timeout=30)
    await a.crons.update(cron["cron_id"], enabled=False)
    # Each slot makes at most one run; a slot fired by each of the four processes
    # would make four times as many runs as slots.
    assert 3 <= len(runs) <= slots, (len(runs), slots)


async def _worker_of(prod: Cluster, run_id: str) -> Any:
    """The worker process holding ``run_id`` (read from the runs table)."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(prod.env["DOCKYARD_DATABASE_URL"]) as conn:
        cur = await conn.execute("SELECT worker_id FROM runs WHERE run_id = %s", (run_id,))
        row = await cur.fetchone()
    assert row is not None and row[0], f"run {run_id} is held by no worker"
    return prod.worker_by_pid(int(row[0].split(":")[1]))


TRIALS = 20


async def test_sigkill_worker_mid_run_resumes_elsewhere_20_trials(
    prod: Cluster, clients: tuple[LangGraphClient, LangGraphClient], tmp_path: Path
) -> None:
    """Each trial kills the worker executing a three-step run after a random step; the
    other worker takes the run over when its lease runs out and finishes it: status
    success, every message exactly once, the finished steps not run again."""
    a, b = clients
    rng = random.Random(7)
    for trial in range(TRIALS):
        steps_before_kill = rng.choice([1, 2])
        # The step after the kill point waits for this file: the kill lands mid-run.
        go = tmp_path / f"go-{trial}"
        tid = (await a.threads.create())["thread_id"]
        run = await a.runs.create(
            tid,
            "steps",
            input={"messages": [{"role": "user", "content": f"t{trial}"}], "delay": 0.25},
            config=hold(go, step=["one", "two", "three"][steps_before_kill]),
        )
        rid = run["run_id"]

        async def reached(tid: str = tid, n: int = steps_before_kill) -> bool:
            state = await b.threads.get_state(tid)
            return len(state["values"].get("messages", [])) >= 1 + n

        await wait_status(a, tid, rid, "running")
        holder = await _worker_of(prod, rid)
        await eventually(reached, timeout=30, interval=0.02)
        prod.kill(holder)  # SIGKILL: no chance to hand anything back
        # Keep two workers; the replacement may still be starting while the
        # survivor takes the run over (or, next trial, is killed in turn).
        prod.start_worker()
        go.touch()
        done = await wait_status(b, tid, rid, "success", "error", "interrupted")
        assert done["status"] == "success", (trial, done)
        assert done["attempts"] >= 2, (trial, done)
        state = await a.threads.get_state(tid)
        assert messages(state) == [f"t{trial}", "one", "two", "three"], (trial, state["values"])
    for w in prod.workers:
        prod.wait_ready(w)
