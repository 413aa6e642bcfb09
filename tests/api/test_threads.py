"""Threads, their state and history through langgraph-sdk against the live server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError


def tag() -> dict[str, Any]:
    return {"suite": uuid.uuid4().hex}


async def interrupted_thread(client: LangGraphClient, **metadata: Any) -> str:
    """A thread paused in `hitl` at the `ask` node, with values {"x": 2, "log": ["prepare"]}."""
    tid = (await client.threads.create(metadata=metadata or None))["thread_id"]
    out = await client.runs.wait(tid, "hitl", input={"x": 1})
    assert out["__interrupt__"][0]["value"] == {"question": "approve?", "x": 2}
    return str(tid)


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


# -- CRUD ----------------------------------------------------------------------------------


async def test_create_and_get(client: LangGraphClient) -> None:
    tid = str(uuid.uuid4())
    meta = {**tag(), "user": "u1"}
    t = await client.threads.create(thread_id=tid, metadata=meta)
    assert t["thread_id"] == tid
    assert t["metadata"] == meta
    assert (t["status"], t["values"], t["interrupts"]) == ("idle", {}, {})
    assert when(t["created_at"]).tzinfo is not None
    assert await client.threads.get(tid) == t

    fresh = await client.threads.create()
    uuid.UUID(fresh["thread_id"])
    assert fresh["metadata"] == {}


async def test_create_if_exists(client: LangGraphClient) -> None:
    tid = (await client.threads.create(metadata={"v": 1}))["thread_id"]
    with pytest.raises(ConflictError) as err:
        await client.threads.create(thread_id=tid)
    assert err.value.code == "thread_exists"
    again = await client.threads.create(thread_id=tid, metadata={"v": 2}, if_exists="do_nothing")
    assert again["metadata"] == {"v": 1}
    assert again == await client.threads.get(tid)


async def test_create_with_ttl(client: LangGraphClient) -> None:
    before = datetime.now(UTC)
    t = await client.threads.create(ttl=5)
    got = await client.threads.get(t["thread_id"], include=["ttl"])
    ttl = got["ttl"]  # type: ignore[typeddict-item]
    assert (ttl["strategy"], ttl["ttl_minutes"]) == ("delete", 5)
    expires = when(ttl["expires_at"])
    assert before + timedelta(minutes=5) <= expires <= datetime.now(UTC) + timedelta(minutes=5)
    assert "ttl" not in await client.threads.get(t["thread_id"])

    await client.threads.update(t["thread_id"], metadata={}, ttl={"ttl": 60, "strategy": "delete"})
    got = await client.threads.get(t["thread_id"], include=["ttl"])
    assert got["ttl"]["ttl_minutes"] == 60  # type: ignore[typeddict-item]

    plain = await client.threads.create()
    assert (await client.threads.get(plain["thread_id"], include=["ttl"]))["ttl"] is None  # type: ignore[typeddict-item]


async def test_create_with_graph_id_knows_its_graph(client: LangGraphClient) -> None:
    t = await client.threads.create(graph_id="trivial", metadata={"k": 1})
    assert t["metadata"] == {"k": 1, "graph_id": "trivial"}
    # Without a run, the state is still the graph's: it can be written and read.
    await client.threads.update_state(t["thread_id"], {"x": 4}, as_node="echo")
    state = await client.threads.get_state(t["thread_id"])
    assert (state["values"], state["next"]) == ({"x": 4}, [])


async def test_update_merges_metadata(client: LangGraphClient) -> None:
    t = await client.threads.create(metadata={"keep": 1, "change": 1})
    tid = t["thread_id"]
    new = await client.threads.update(tid, metadata={"change": 2, "add": 3})
    assert new["metadata"] == {"keep": 1, "change": 2, "add": 3}
    assert new["created_at"] == t["created_at"]
    assert when(new["updated_at"]) > when(t["updated_at"])
    assert await client.threads.get(tid) == new
    assert await client.threads.update(tid, metadata={"quiet": True}, return_minimal=True) is None
    assert (await client.threads.get(tid))["metadata"]["quiet"] is True


async def test_delete_removes_thread_and_checkpoints(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    await client.runs.wait(tid, "trivial", input={"x": 3})
    assert len(await client.threads.get_history(tid)) == 3
    assert await client.threads.delete(tid) is None
    with pytest.raises(NotFoundError):
        await client.threads.get(tid)
    with pytest.raises(NotFoundError):
        await client.threads.delete(tid)
    # Same id again, same graph: nothing of the old checkpoints comes back.
    await client.threads.create(thread_id=tid, graph_id="trivial")
    assert await client.threads.get_history(tid) == []
    state = await client.threads.get_state(tid)
    assert (state["values"], state["next"], state["created_at"]) == ({}, [], None)
    assert (state["checkpoint"] or {}).get("checkpoint_id") is None


# -- search and count ----------------------------------------------------------------------


async def test_search_and_count(client: LangGraphClient) -> None:
    meta = tag()
    idle = (await client.threads.create(metadata={**meta, "kind": "idle"}))["thread_id"]
    paused = await interrupted_thread(client, **meta, kind="paused")
    done = (await client.threads.create(metadata={**meta, "kind": "done"}))["thread_id"]
    assert await client.runs.wait(done, "trivial", input={"x": 7}) == {"x": 7}

    found = await client.threads.search(metadata=meta)
    assert [t["thread_id"] for t in found] == [done, paused, idle]  # newest first
    by_id = {t["thread_id"]: t for t in found}
    assert by_id[done]["values"] == {"x": 7} and by_id[done]["status"] == "idle"
    assert by_id[paused]["status"] == "interrupted"
    assert by_id[paused]["values"] == {"x": 2, "log": ["prepare"]}

    async def ids(**kw: Any) -> list[str]:
        return [t["thread_id"] for t in await client.threads.search(**kw)]

    assert await ids(metadata=meta, status="interrupted") == [paused]
    assert await ids(metadata={**meta, "kind": "idle"}) == [idle]
    assert await ids(metadata=meta, values={"x": 7}) == [done]
    assert await ids(metadata=meta, values={"log": ["prepare"]}) == [paused]
    assert await ids(ids=[idle, done]) == [done, idle]
    assert await ids(metadata=meta, limit=2) == [done, paused]
    assert await ids(metadata=meta, limit=2, offset=2) == [idle]
    assert await ids(metadata=meta, sort_by="created_at", sort_order="asc") == [idle, paused, done]
    assert await ids(metadata=meta, sort_by="thread_id", sort_order="asc") == sorted(
        [idle, paused, done]
    )
    slim = await client.threads.search(ids=[idle], select=["thread_id", "status"])
    assert slim == [{"thread_id": idle, "status": "idle"}]

    assert await client.threads.count(metadata=meta) == 3
    assert await client.threads.count(metadata=meta, status="interrupted") == 1
    assert await client.threads.count(metadata=meta, values={"x": 7}) == 1
    assert await client.threads.count(metadata={**meta, "kind": "none"}) == 0


# -- copy and prune ------------------------------------------------------------------------


async def test_copy_copies_state_and_history(client: LangGraphClient) -> None:
    meta = tag()
    src = await interrupted_thread(client, **meta)
    copy = await client.threads.copy(src)
    assert copy is not None
    new = copy["thread_id"]
    assert new != src
    assert copy["metadata"] == meta
    assert copy["status"] == "interrupted"
    assert copy["values"] == {"x": 2, "log": ["prepare"]}

    src_history = await client.threads.get_history(src)
    new_history = await client.threads.get_history(new)
    assert [s["checkpoint"]["checkpoint_id"] for s in new_history] == [
        s["checkpoint"]["checkpoint_id"] for s in src_history
    ]
    assert [s["values"] for s in new_history] == [s["values"] for s in src_history]
    assert all(s["checkpoint"]["thread_id"] == new for s in new_history)
    state = await client.threads.get_state(new)
    assert state["next"] == ["ask"]
    assert state["interrupts"][0]["value"] == {"question": "approve?", "x": 2}

    # The copy resumes on its own; the original stays where it was.
    out = await client.runs.wait(new, "hitl", command={"resume": "copy-yes"})
    assert out == {"x": 2, "approved": "copy-yes", "log": ["prepare", "ask", "finish"]}
    assert (await client.threads.get_state(src))["next"] == ["ask"]
    assert (await client.threads.get(src))["status"] == "interrupted"

    with pytest.raises(NotFoundError):
        await client.threads.copy(str(uuid.uuid4()))


async def test_prune_delete(client: LangGraphClient) -> None:
    a = (await client.threads.create())["thread_id"]
    b = (await client.threads.create())["thread_id"]
    await client.runs.wait(a, "trivial", input={"x": 1})
    result = await client.threads.prune([a, str(uuid.uuid4())])
    assert result == {"pruned_count": 1}
    with pytest.raises(NotFoundError):
        await client.threads.get(a)
    assert (await client.threads.get(b))["thread_id"] == b


async def test_prune_keep_latest(client: LangGraphClient) -> None:
    tid = await interrupted_thread(client)
    before = await client.threads.get_history(tid)
    assert len(before) == 3
    assert await client.threads.prune([tid], strategy="keep_latest") == {"pruned_count": 1}
    after = await client.threads.get_history(tid)
    assert len(after) == 1
    assert after[0]["checkpoint"] == before[0]["checkpoint"]
    assert (after[0]["values"], after[0]["next"]) == ({"x": 2, "log": ["prepare"]}, ["ask"])
    assert (await client.threads.get(tid))["status"] == "interrupted"
    out = await client.runs.wait(tid, "hitl", command={"resume": "ok"})
    assert out["log"] == ["prepare", "ask", "finish"]


# -- state ---------------------------------------------------------------------------------


async def test_get_state(client: LangGraphClient) -> None:
    tid = await interrupted_thread(client)
    state = await client.threads.get_state(tid)
    assert state["values"] == {"x": 2, "log": ["prepare"]}
    assert state["next"] == ["ask"]
    assert state["checkpoint"]["thread_id"] == tid
    assert state["checkpoint"]["checkpoint_ns"] == ""
    assert state["metadata"]["step"] == 1 and state["metadata"]["source"] == "loop"
    assert state["parent_checkpoint"] is not None
    assert [t["name"] for t in state["tasks"]] == ["ask"]
    assert state["tasks"][0]["interrupts"][0]["value"]["question"] == "approve?"
    assert when(state["created_at"]).tzinfo is not None

    slim = await client.threads.get_state(tid, select=["next", "values.x"])
    assert slim == {"next": ["ask"], "values": {"x": 2}}

    empty = await client.threads.create()
    blank = await client.threads.get_state(empty["thread_id"])
    assert (blank["values"], blank["next"], blank["checkpoint"]) == ({}, [], None)


async def test_get_state_subgraphs(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    assert await client.runs.wait(tid, "nested", input={"x": 2}) == {"x": 20}
    state = await client.threads.get_state(tid, subgraphs=True)
    assert state["values"] == {"x": 20} and state["next"] == []


async def test_state_at_a_checkpoint(client: LangGraphClient) -> None:
    tid = await interrupted_thread(client)
    history = await client.threads.get_history(tid)
    older = history[1]  # after the input, before `prepare` ran
    assert older["next"] == ["prepare"]
    cid = older["checkpoint"]["checkpoint_id"]

    by_get = await client.threads.get_state(tid, checkpoint_id=cid)  # GET /state/{id}
    by_post = await client.threads.get_state(tid, checkpoint=older["checkpoint"])  # POST
    for state in (by_get, by_post):
        assert state["checkpoint"]["checkpoint_id"] == cid
        assert state["values"] == older["values"] == {"x": 1, "log": []}
        assert state["next"] == ["prepare"]
    assert by_get == by_post

    slim = await client.threads.get_state(tid, checkpoint=older["checkpoint"], select=["values"])
    assert slim == {"values": {"x": 1, "log": []}}
    missing = "1f000000-0000-6000-8000-000000000000"
    with pytest.raises(NotFoundError) as err:
        await client.threads.get_state(tid, checkpoint_id=missing)
    assert err.value.code == "checkpoint_not_found"
    with pytest.raises(NotFoundError):
        await client.threads.get_state(tid, checkpoint={"checkpoint_id": missing})  # type: ignore[typeddict-item]


async def test_update_state_as_node(client: LangGraphClient) -> None:
    tid = await interrupted_thread(client)
    before = await client.threads.get_state(tid)
    result = await client.threads.update_state(tid, {"x": 50, "log": ["edit"]}, as_node="prepare")
    cp = result["checkpoint"]
    assert cp["thread_id"] == tid and cp["checkpoint_id"]

    state = await client.threads.get_state(tid)
    assert state["checkpoint"]["checkpoint_id"] == cp["checkpoint_id"]
    assert state["parent_checkpoint"]["checkpoint_id"] == before["checkpoint"]["checkpoint_id"]
    assert state["values"] == {"x": 50, "log": ["prepare", "edit"]}  # `log` has a reducer
    assert state["next"] == ["ask"]  # as if `prepare` had just run
    assert state["metadata"]["source"] == "update"
    thread = await client.threads.get(tid)
    assert thread["values"] == state["values"]
    assert thread["status"] == "interrupted"

    out = await client.runs.wait(tid, "hitl", command={"resume": "fine"})
    assert out["x"] == 50 and out["approved"] == "fine"

    as_last = await client.threads.create(graph_id="trivial")
    await client.threads.update_state(as_last["thread_id"], {"x": 9}, as_node="echo")
    assert (await client.threads.get_state(as_last["thread_id"]))["next"] == []
    with pytest.raises(UnprocessableEntityError) as err:
        await client.threads.update_state(tid, {"x": 1}, as_node="no_such_node")
    assert "no_such_node" in str(err.value.body)


async def test_update_state_at_a_checkpoint_forks(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    await client.runs.wait(tid, "trivial", input={"x": 1})
    history = await client.threads.get_history(tid)
    first = history[-1]  # the input checkpoint
    assert first["next"] == ["__start__"]

    result = await client.threads.update_state(
        tid, {"x": 9}, as_node="echo", checkpoint=first["checkpoint"]
    )
    state = await client.threads.get_state(tid)
    assert state["checkpoint"]["checkpoint_id"] == result["checkpoint"]["checkpoint_id"]
    assert state["parent_checkpoint"]["checkpoint_id"] == first["checkpoint"]["checkpoint_id"]
    assert state["values"] == {"x": 9}

    second = history[-2]["checkpoint"]["checkpoint_id"]
    result = await client.threads.update_state(tid, {"x": 11}, as_node="echo", checkpoint_id=second)
    state = await client.threads.get_state(tid)
    assert state["parent_checkpoint"]["checkpoint_id"] == second
    assert state["values"] == {"x": 11}

    # An unknown checkpoint is a 404, and the thread's state is left as it was.
    with pytest.raises(NotFoundError):
        await client.threads.update_state(
            tid, {"x": 0}, checkpoint_id="1f000000-0000-6000-8000-000000000000"
        )
    assert (await client.threads.get_state(tid))["values"] == {"x": 11}


async def test_update_state_of_busy_thread_is_409(client: LangGraphClient, tmp_path: Path) -> None:
    tid = (await client.threads.create())["thread_id"]
    go = tmp_path / "go"  # the run stays busy until this file exists
    run = await client.runs.create(
        tid, "slow", input={"delay": 0}, config={"configurable": {"hold": str(go)}}
    )
    try:
        with pytest.raises(ConflictError) as err:
            await client.threads.update_state(tid, {"steps": ["x"]})
        assert err.value.code == "thread_busy"
    finally:
        go.touch()
        await client.runs.join(tid, run["run_id"])


# -- history -------------------------------------------------------------------------------


async def test_history(client: LangGraphClient) -> None:
    tid = await interrupted_thread(client)
    await client.runs.wait(tid, "hitl", command={"resume": "yes"})
    history = await client.threads.get_history(tid, limit=100)
    steps = [s["metadata"]["step"] for s in history]
    assert steps == sorted(steps, reverse=True)  # newest first
    assert history[0]["values"] == {"x": 2, "approved": "yes", "log": ["prepare", "ask", "finish"]}
    assert history[0]["next"] == []
    assert history[-1]["next"] == ["__start__"]
    assert len(history) == 5

    assert await client.threads.get_history(tid, limit=2) == history[:2]
    before = await client.threads.get_history(tid, before=history[1]["checkpoint"])
    assert before == history[2:]
    by_id = await client.threads.get_history(
        tid, before=history[1]["checkpoint"]["checkpoint_id"], limit=1
    )
    assert by_id == history[2:3]
    inputs = await client.threads.get_history(tid, metadata={"source": "input"})
    assert [s["checkpoint"] for s in inputs] == [
        s["checkpoint"] for s in history if s["metadata"]["source"] == "input"
    ]
    assert len(inputs) == 1  # a resume adds no input checkpoint
    step1 = await client.threads.get_history(tid, metadata={"step": 1, "source": "loop"})
    assert [s["values"] for s in step1] == [{"x": 2, "log": ["prepare"]}]
    assert await client.threads.get_history(tid, metadata={"step": 99}) == []
    slim = await client.threads.get_history(tid, limit=1, select=["values.approved"])
    assert slim == [{"values": {"approved": "yes"}}]

    empty = await client.threads.create()
    assert await client.threads.get_history(empty["thread_id"]) == []


async def test_pagination_header_only_when_more_rows_exist(http: httpx.AsyncClient) -> None:
    tag = {"page-test": str(uuid.uuid4())}
    for _ in range(3):
        await http.post("/threads", json={"metadata": tag})
    full = await http.post("/threads/search", json={"metadata": tag, "limit": 3})
    assert len(full.json()) == 3 and "x-pagination-next" not in full.headers
    first = await http.post("/threads/search", json={"metadata": tag, "limit": 2})
    assert len(first.json()) == 2 and first.headers["x-pagination-next"] == "2"
    rest = await http.post("/threads/search", json={"metadata": tag, "limit": 2, "offset": 2})
    assert len(rest.json()) == 1 and "x-pagination-next" not in rest.headers
