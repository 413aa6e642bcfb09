"""Interrupts and resume, multitask strategies, cancel, join, stateless runs, batch."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import ConflictError
from langgraph_sdk.schema import Config

from tests.conftest import eventually


def hold(go: Path) -> Config:
    """A run config that holds "slow" before its second step (and "approve_slow" before
    it finishes) until the file ``go`` exists: the run is busy until the test says."""
    return {"configurable": {"hold": str(go)}}


def held(tmp_path: Path) -> Config:
    """Held for good: the test ends the run itself (cancel, interrupt, rollback)."""
    return hold(tmp_path / "never")


async def run_status(client: LangGraphClient, thread_id: str, run_id: str) -> str:
    return str((await client.runs.get(thread_id, run_id))["status"])


async def wait_status(client: LangGraphClient, thread_id: str, run_id: str, *wanted: str) -> str:
    async def check() -> str | None:
        status = await run_status(client, thread_id, run_id)
        return status if status in wanted else None

    return str(await eventually(check))


# -- interrupts -----------------------------------------------------------------------------


async def test_interrupt_then_resume(client: LangGraphClient) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    first = await client.runs.wait(tid, "hitl", input={"x": 1})
    assert first["__interrupt__"][0]["value"] == {"question": "approve?", "x": 2}
    t = await client.threads.get(tid)
    assert t["status"] == "interrupted"
    assert next(iter(t["interrupts"].values()))[0]["value"]["question"] == "approve?"
    state = await client.threads.get_state(tid)
    assert state["next"] == ["ask"]
    assert state["interrupts"][0]["value"]["x"] == 2
    second = await client.runs.wait(tid, "hitl", command={"resume": "yes"})
    assert second == {"x": 2, "approved": "yes", "log": ["prepare", "ask", "finish"]}
    t = await client.threads.get(tid)
    runs = await client.runs.list(tid)
    assert t["status"] == "idle", [(r["status"], r["created_at"], r["ended_at"]) for r in runs]
    assert t["interrupts"] == {}
    assert (await client.threads.get_state(tid))["next"] == []


async def test_interrupt_before_and_continue_with_none(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    await client.runs.wait(tid, "trivial", input={"x": 5}, interrupt_before=["echo"])
    assert (await client.threads.get_state(tid))["next"] == ["echo"]
    assert (await client.threads.get(tid))["status"] == "interrupted"
    assert await client.runs.wait(tid, "trivial", input=None) == {"x": 5}
    assert (await client.threads.get(tid))["status"] == "idle"


async def test_interrupt_after(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    await client.runs.wait(tid, "slow", input={"delay": 0}, interrupt_after=["one"])
    state = await client.threads.get_state(tid)
    assert state["next"] == ["two"]
    assert state["values"]["steps"] == ["one"]


async def test_command_update_and_goto(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    await client.runs.wait(tid, "hitl", input={"x": 1})
    out = await client.runs.wait(tid, "hitl", command={"resume": "ok", "update": {"x": 100}})
    assert out["x"] == 100 and out["approved"] == "ok"
    out = await client.runs.wait(tid, "hitl", command={"goto": "finish"})
    assert out["log"][-1] == "finish"


async def test_interrupt_before_unknown_node_is_422(http: httpx.AsyncClient) -> None:
    r = await http.post(
        "/runs/wait", json={"assistant_id": "trivial", "interrupt_before": ["nope"]}
    )
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_request"
    assert "nope" in r.json()["detail"]


# -- multitask strategies -------------------------------------------------------------------


async def test_reject_answers_409_on_busy_thread(client: LangGraphClient, tmp_path: Path) -> None:
    tid = (await client.threads.create())["thread_id"]
    go = tmp_path / "go"
    first = await client.runs.create(tid, "slow", input={"delay": 0}, config=hold(go))
    with pytest.raises(ConflictError) as err:
        await client.runs.create(tid, "slow", input={"delay": 0}, multitask_strategy="reject")
    assert err.value.code == "thread_busy"
    go.touch()
    await client.runs.join(tid, first["run_id"])
    assert await run_status(client, tid, first["run_id"]) == "success"


async def test_interrupt_strategy_interrupts_the_earlier_run(
    client: LangGraphClient, tmp_path: Path
) -> None:
    tid = (await client.threads.create())["thread_id"]
    first = await client.runs.create(tid, "slow", input={"delay": 0}, config=held(tmp_path))
    await wait_status(client, tid, first["run_id"], "running")
    second = await client.runs.create(
        tid, "slow", input={"delay": 0}, multitask_strategy="interrupt"
    )
    await client.runs.join(tid, second["run_id"])
    assert await run_status(client, tid, first["run_id"]) == "interrupted"
    assert await run_status(client, tid, second["run_id"]) == "success"


async def test_rollback_strategy_deletes_the_earlier_run(
    client: LangGraphClient, tmp_path: Path
) -> None:
    tid = (await client.threads.create())["thread_id"]
    first = await client.runs.create(tid, "slow", input={"delay": 0}, config=held(tmp_path))
    await wait_status(client, tid, first["run_id"], "running")
    second = await client.runs.create(
        tid, "slow", input={"delay": 0}, multitask_strategy="rollback"
    )
    result = await client.runs.join(tid, second["run_id"])
    assert result["steps"] == ["one", "two"]
    runs = await client.runs.list(tid)
    assert [r["run_id"] for r in runs] == [second["run_id"]]
    # the rolled-back run left no checkpoints behind
    history = await client.threads.get_history(tid, limit=100)
    assert {h["metadata"].get("run_id") for h in history} == {second["run_id"]}


async def test_enqueue_runs_in_order(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    runs = [
        await client.runs.create(tid, "slow", input={"delay": 0.05}, multitask_strategy="enqueue")
        for _ in range(3)
    ]
    await client.runs.join(tid, runs[-1]["run_id"])
    done = [await client.runs.get(tid, r["run_id"]) for r in runs]
    assert [d["status"] for d in done] == ["success"] * 3
    starts = [d["started_at"] for d in done]
    ends = [d["ended_at"] for d in done]
    assert starts == sorted(starts)
    assert ends[0] <= starts[1] and ends[1] <= starts[2]
    state = await client.threads.get_state(tid)
    assert state["values"]["steps"] == ["one", "two"] * 3


async def test_concurrent_resumes_never_both_execute(
    client: LangGraphClient, tmp_path: Path
) -> None:
    # approve_slow holds its last step until the test lets it go: the two resumes
    # overlap, so the second one meets the first one's run (not a thread it finished).
    for i in range(3):
        go = tmp_path / f"go-{i}"
        tid = (await client.threads.create())["thread_id"]
        await client.runs.wait(tid, "approve_slow", input={"x": 1})

        async def resume(answer: str, tid: str = tid, go: Path = go) -> Any:
            try:
                return await client.runs.wait(
                    tid,
                    "approve_slow",
                    command={"resume": answer},
                    multitask_strategy="reject",
                    config=hold(go),
                )
            except httpx.HTTPStatusError as e:  # runs.wait raises httpx's error type
                assert e.response.status_code == 409
                assert e.response.json()["code"] == "thread_busy"
                return "rejected"

        resumes = [asyncio.create_task(resume(answer)) for answer in ("a", "b")]
        # One answer comes while the other run is held (none if both were taken).
        await asyncio.wait(resumes, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        go.touch()
        results = await asyncio.gather(*resumes)
        assert results.count("rejected") == 1, results
        winner = next(r for r in results if r != "rejected")
        state = await client.threads.get_state(tid)
        assert state["values"]["log"] == ["prepare", "ask", "slow_finish"]
        assert state["values"]["approved"] == winner["approved"]
        assert len(await client.runs.list(tid)) == 2


# -- cancel ---------------------------------------------------------------------------------


async def test_cancel_wait_leaves_run_interrupted(client: LangGraphClient, tmp_path: Path) -> None:
    tid = (await client.threads.create())["thread_id"]
    run = await client.runs.create(tid, "slow", input={"delay": 0}, config=held(tmp_path))
    await wait_status(client, tid, run["run_id"], "running")
    await client.runs.cancel(tid, run["run_id"], wait=True)
    assert await run_status(client, tid, run["run_id"]) == "interrupted"
    assert (await client.threads.get(tid))["status"] in ("idle", "interrupted")
    # the thread is usable again
    assert (await client.runs.wait(tid, "slow", input={"delay": 0}))["steps"]


async def test_cancel_rollback_removes_run(client: LangGraphClient, tmp_path: Path) -> None:
    tid = (await client.threads.create())["thread_id"]
    run = await client.runs.create(tid, "slow", input={"delay": 0}, config=held(tmp_path))
    await wait_status(client, tid, run["run_id"], "running")
    await client.runs.cancel(tid, run["run_id"], wait=True, action="rollback")
    assert await client.runs.list(tid) == []


async def test_cancel_pending_run(client: LangGraphClient, tmp_path: Path) -> None:
    tid = (await client.threads.create())["thread_id"]
    go = tmp_path / "go"
    first = await client.runs.create(tid, "slow", input={"delay": 0}, config=hold(go))
    queued = await client.runs.create(tid, "slow", input={"delay": 0})
    await client.runs.cancel(tid, queued["run_id"])
    assert await run_status(client, tid, queued["run_id"]) == "interrupted"
    go.touch()
    await client.runs.join(tid, first["run_id"])
    assert await run_status(client, tid, first["run_id"]) == "success"


async def test_cancel_many_and_finished_run_conflict(
    client: LangGraphClient, tmp_path: Path
) -> None:
    tid = (await client.threads.create())["thread_id"]
    a = await client.runs.create(tid, "slow", input={"delay": 0}, config=held(tmp_path))
    b = await client.runs.create(tid, "slow", input={"delay": 0}, config=held(tmp_path))
    await client.runs.cancel_many(thread_id=tid, run_ids=[a["run_id"], b["run_id"]])
    await wait_status(client, tid, a["run_id"], "interrupted")
    await wait_status(client, tid, b["run_id"], "interrupted")
    with pytest.raises(ConflictError):
        await client.runs.cancel(tid, a["run_id"])


# -- join, join_stream, Last-Event-ID ---------------------------------------------------------


async def test_join_stream_replays_after_last_event_id(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    run = await client.runs.create(
        tid, "slow", input={"delay": 0.1}, stream_mode=["values", "updates"]
    )
    full = [p async for p in client.runs.join_stream(tid, run["run_id"])]
    assert full[0].event == "metadata"
    # Ids are opaque to clients: "n" in memory, Redis' "<ms>-<seq>" with Redis.
    ids = [tuple(int(x) for x in str(p.id).split("-")) for p in full]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    cut = full[2].id
    rest = [p async for p in client.runs.join_stream(tid, run["run_id"], last_event_id=cut)]
    assert [p.id for p in rest] == [p.id for p in full[3:]]
    only_updates = [
        p async for p in client.runs.join_stream(tid, run["run_id"], stream_mode="updates")
    ]
    assert {p.event for p in only_updates} == {"metadata", "updates", "end"}


async def test_join_returns_final_values(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    run = await client.runs.create(tid, "trivial", input={"x": 11})
    assert await client.runs.join(tid, run["run_id"]) == {"x": 11}
    assert await client.runs.join(tid, run["run_id"]) == {"x": 11}


async def test_thread_join_stream_follows_active_run(
    client: LangGraphClient, tmp_path: Path
) -> None:
    tid = (await client.threads.create())["thread_id"]
    go = tmp_path / "go"
    run = await client.runs.create(tid, "slow", input={"delay": 0.1}, config=hold(go))
    parts: list[Any] = []

    async def follow() -> None:
        async for p in await client.threads.join_stream(tid):
            parts.append(p)

    following = asyncio.create_task(follow())
    await eventually(lambda: parts)  # it follows the run, which is still held
    go.touch()
    await asyncio.wait_for(following, 30)
    assert parts[0].event == "metadata" and parts[0].data["run_id"] == run["run_id"]
    assert parts[-2].data["steps"] == ["one", "two"]
    assert parts[-1].event == "end"


# -- stateless, batch, scheduling, listing --------------------------------------------------


async def test_stateless_run_deletes_its_thread(client: LangGraphClient) -> None:
    created: list[Any] = []
    out = await client.runs.wait(None, "trivial", input={"x": 2}, on_run_created=created.append)
    assert out == {"x": 2}
    tid = created[0]["thread_id"]
    assert await client.threads.search(ids=[tid]) == []


async def test_stateless_keep_keeps_thread(client: LangGraphClient) -> None:
    created: list[Any] = []
    await client.runs.wait(
        None, "trivial", input={"x": 3}, on_completion="keep", on_run_created=created.append
    )
    thread = await client.threads.get(created[0]["thread_id"])
    assert thread["values"] == {"x": 3}


async def test_batch_creates_runs(client: LangGraphClient) -> None:
    runs = await client.runs.create_batch(
        [{"assistant_id": "trivial", "input": {"x": i}} for i in range(3)]
    )
    # stateless runs start at once when a slot is free, else wait in the queue
    assert len(runs) == 3 and all(r["status"] in ("pending", "running") for r in runs)


async def test_after_seconds_delays_start(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    run = await client.runs.create(tid, "trivial", input={"x": 1}, after_seconds=1)
    # Asked at once (well within the second), not after a sleep that a busy machine
    # can stretch past it; the server's own timestamps show the delay below.
    assert await run_status(client, tid, run["run_id"]) == "pending"
    await client.runs.join(tid, run["run_id"])
    got = await client.runs.get(tid, run["run_id"])
    assert got["status"] == "success"
    assert got["started_at"] >= got["created_at"]
    started, created = (datetime.fromisoformat(got[k]) for k in ("started_at", "created_at"))
    assert started - created >= timedelta(seconds=1)


async def test_list_get_delete_runs(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    for i in range(3):
        await client.runs.wait(tid, "trivial", input={"x": i})
    runs = await client.runs.list(tid, limit=2)
    assert len(runs) == 2
    assert len(await client.runs.list(tid, limit=10, offset=2)) == 1
    assert len(await client.runs.list(tid, status="success")) == 3
    await client.runs.delete(tid, runs[0]["run_id"])
    assert len(await client.runs.list(tid)) == 2


async def test_if_not_exists_create(client: LangGraphClient) -> None:
    import uuid

    tid = str(uuid.uuid4())
    out = await client.runs.wait(tid, "trivial", input={"x": 1}, if_not_exists="create")
    assert out == {"x": 1}
    assert (await client.threads.get(tid))["status"] == "idle"


async def test_durability_and_checkpoint_id(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    await client.runs.wait(tid, "trivial", input={"x": 1}, durability="sync")
    history = await client.threads.get_history(tid)
    first_cp = history[-1]["checkpoint"]["checkpoint_id"]
    await client.runs.wait(tid, "trivial", input={"x": 2}, durability="exit")
    # fork from the first checkpoint
    out = await client.runs.wait(tid, "trivial", input={"x": 3}, checkpoint_id=first_cp)
    assert out == {"x": 3}


async def test_stream_disconnect_cancels_when_asked(
    client: LangGraphClient, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    tid = (await client.threads.create())["thread_id"]
    async with http.stream(
        "POST",
        f"/threads/{tid}/runs/stream",
        json={
            "assistant_id": "slow",
            "input": {"delay": 0},
            "config": held(tmp_path),
            "on_disconnect": "cancel",
        },
    ) as r:
        async for line in r.aiter_lines():
            if line.startswith("data:"):
                break  # got the metadata event: hang up
    runs = await client.runs.list(tid)
    await wait_status(client, tid, runs[0]["run_id"], "interrupted")


async def test_a_cancel_the_run_drops_is_repeated(client: LangGraphClient, tmp_path: Path) -> None:
    """Python 3.11's wait_for can swallow a cancel (psycopg_pool waits that way);
    the executor cancels again until the run takes it up."""
    tid = (await client.threads.create())["thread_id"]
    # Held where it drops the first cancel; then it sleeps long enough for any repeat.
    run = await client.runs.create(tid, "stubborn", input={"delay": 30}, config=held(tmp_path))
    await wait_status(client, tid, run["run_id"], "running")
    await client.runs.cancel(tid, run["run_id"], wait=True)
    assert await run_status(client, tid, run["run_id"]) == "interrupted"


async def test_rollback_of_a_resume_puts_the_interrupt_back(
    client: LangGraphClient, tmp_path: Path
) -> None:
    tid = (await client.threads.create())["thread_id"]
    await client.runs.wait(tid, "approve_slow", input={"x": 1})
    assert (await client.threads.get_state(tid))["next"] == ["ask"]
    resume = await client.runs.create(
        tid, "approve_slow", command={"resume": "yes"}, config=held(tmp_path)
    )

    async def approval_written() -> bool:
        history = await client.threads.get_history(tid, limit=1)
        return history[0]["metadata"].get("run_id") == resume["run_id"]

    await eventually(approval_written)  # "ask" finished; "slow_finish" is held
    await client.runs.cancel(tid, resume["run_id"], wait=True, action="rollback")
    state = await client.threads.get_state(tid)
    assert state["next"] == ["ask"]
    assert state["interrupts"][0]["value"]["question"] == "approve?"
    assert "approved" not in state["values"]
    assert (await client.threads.get(tid))["status"] == "interrupted"
    out = await client.runs.wait(tid, "approve_slow", command={"resume": "no"})
    assert out["approved"] == "no"
    assert out["log"] == ["prepare", "ask", "slow_finish"]
