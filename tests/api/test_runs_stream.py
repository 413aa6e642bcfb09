"""runs.stream / runs.wait through langgraph-sdk: every stream mode as the SDK parses it."""

from __future__ import annotations

from typing import Any

import httpx
from langgraph_sdk.client import LangGraphClient


async def collect(
    client: LangGraphClient, thread_id: str | None, graph: str, **kw: Any
) -> list[Any]:
    return [p async for p in client.runs.stream(thread_id, graph, **kw)]


async def test_values_stream_starts_with_metadata(client: LangGraphClient) -> None:
    thread = await client.threads.create()
    created: list[Any] = []
    parts = await collect(
        client, thread["thread_id"], "trivial", input={"x": 7}, on_run_created=created.append
    )
    assert parts[0].event == "metadata"
    run_id = parts[0].data["run_id"]
    assert created and created[0]["run_id"] == run_id
    assert created[0]["thread_id"] == thread["thread_id"]
    assert [p.event for p in parts[1:]] == ["values", "values", "end"]
    assert parts[-2].data == {"x": 7}
    # the SDK's documented stream end: it stops without asking for the run's status
    assert parts[-1].data == {"run_id": run_id, "status": "success"}
    run = await client.runs.get(thread["thread_id"], run_id)
    assert run["status"] == "success"
    assert (await client.threads.get(thread["thread_id"]))["values"] == {"x": 7}


async def test_sse_wire_format_and_headers(http: httpx.AsyncClient) -> None:
    thread = (await http.post("/threads", json={})).json()
    async with http.stream(
        "POST",
        f"/threads/{thread['thread_id']}/runs/stream",
        json={"assistant_id": "trivial", "input": {"x": 1}},
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        loc = r.headers["content-location"]
        assert loc.startswith(f"/threads/{thread['thread_id']}/runs/")
        assert r.headers["location"] == f"{loc}/stream"
        body = (await r.aread()).decode()
    first = body.split("\n\n")[0].splitlines()
    assert first[0] == "event: metadata"
    assert first[1].startswith("data: {")
    assert first[2].startswith("id: ") and len(first[2]) > 4  # opaque, per broker


async def test_updates_and_multiple_modes(client: LangGraphClient) -> None:
    parts = await collect(client, None, "hitl", input={"x": 1}, stream_mode=["updates", "values"])
    events = [p.event for p in parts]
    assert events[0] == "metadata"
    assert {"updates", "values"} <= set(events)
    updates = [p.data for p in parts if p.event == "updates"]
    assert updates[0] == {"prepare": {"x": 2, "log": ["prepare"]}}
    interrupt = updates[-1]["__interrupt__"][0]
    assert interrupt["value"] == {"question": "approve?", "x": 2}
    assert set(interrupt) == {"value", "id"}


async def test_messages_tuple_mode(client: LangGraphClient) -> None:
    parts = await collect(
        client,
        None,
        "chat",
        input={"messages": [{"role": "user", "content": "hi"}]},
        stream_mode="messages-tuple",
    )
    msgs = [p for p in parts if p.event == "messages"]
    assert msgs, [p.event for p in parts]
    text = "".join(chunk["content"] for chunk, meta in (p.data for p in msgs))
    assert text == "hello there friend"
    chunk, meta = msgs[0].data
    assert chunk["type"] == "AIMessageChunk"
    assert meta["langgraph_node"] == "chat"


async def test_messages_mode_partial_metadata_complete(client: LangGraphClient) -> None:
    parts = await collect(
        client,
        None,
        "chat",
        input={"messages": [{"role": "user", "content": "hi"}]},
        stream_mode="messages",
    )
    events = [p.event for p in parts]
    assert events[1] == "messages/metadata"
    partials = [p.data for p in parts if p.event == "messages/partial"]
    # each partial carries the message accumulated so far
    assert partials[-1][0]["content"] == "hello there friend"
    assert len(partials[0][0]["content"]) < len(partials[-1][0]["content"])
    complete = [p.data for p in parts if p.event == "messages/complete"]
    assert complete and complete[-1][0]["content"] == "hello there friend"


async def test_custom_mode_and_context(client: LangGraphClient) -> None:
    parts = await collect(
        client,
        None,
        "custom",
        input={},
        stream_mode=["custom", "values"],
        context={"greeting": "bonjour"},
    )
    assert {"progress": "speaking"} in [p.data for p in parts if p.event == "custom"]
    assert [p.data for p in parts if p.event == "values"][-1]["said"] == "bonjour"


async def test_debug_tasks_checkpoints_modes(client: LangGraphClient) -> None:
    parts = await collect(
        client, None, "trivial", input={"x": 2}, stream_mode=["debug", "tasks", "checkpoints"]
    )
    events = {p.event for p in parts}
    assert {"debug", "tasks", "checkpoints"} <= events
    debug_types = {p.data["type"] for p in parts if p.event == "debug"}
    assert {"checkpoint", "task", "task_result"} <= debug_types
    task_names = {p.data["name"] for p in parts if p.event == "tasks"}
    assert "echo" in task_names
    assert any(p.data["values"] == {"x": 2} for p in parts if p.event == "checkpoints")


async def test_events_mode(client: LangGraphClient) -> None:
    parts = await collect(client, None, "trivial", input={"x": 4}, stream_mode=["events", "values"])
    kinds = {p.data["event"] for p in parts if p.event == "events"}
    assert {"on_chain_start", "on_chain_end"} <= kinds
    assert [p.data for p in parts if p.event == "values"][-1] == {"x": 4}


async def test_subgraphs_namespaced_events(client: LangGraphClient) -> None:
    parts = await collect(
        client, None, "nested", input={"x": 2}, stream_mode="updates", stream_subgraphs=True
    )
    names = [p.event for p in parts]
    assert "updates" in names
    sub = [n for n in names if n.startswith("updates|sub:")]
    assert sub, names
    without = await collect(client, None, "nested", input={"x": 2}, stream_mode="updates")
    assert all("|" not in p.event for p in without)


async def test_wait_returns_final_values(client: LangGraphClient) -> None:
    assert await client.runs.wait(None, "nested", input={"x": 2}) == {"x": 20}


async def test_failing_run_reports_error_and_server_keeps_serving(
    client: LangGraphClient,
) -> None:
    thread = await client.threads.create()
    parts = await collect(client, thread["thread_id"], "failing", input={"x": 1})
    assert parts[-1].event == "error"
    assert parts[-1].data == {"error": "ValueError", "message": "the tool exploded"}
    runs = await client.runs.list(thread["thread_id"])
    assert runs[0]["status"] == "error"
    assert runs[0]["error"] == {"error": "ValueError", "message": "the tool exploded"}
    assert (await client.threads.get(thread["thread_id"]))["status"] == "error"
    result = await client.runs.wait(None, "failing", input={}, raise_error=False)
    assert result == {"__error__": {"error": "ValueError", "message": "the tool exploded"}}
    try:
        await client.runs.wait(None, "failing", input={})
    except Exception as e:
        assert "the tool exploded" in str(e)
    else:  # pragma: no cover - the SDK must raise
        raise AssertionError("runs.wait did not raise on a failed run")
    assert await client.runs.wait(None, "trivial", input={"x": 1}) == {"x": 1}


async def test_factory_graph(client: LangGraphClient) -> None:
    assert await client.runs.wait(None, "factory", input={"x": 9}) == {"x": 9}


async def test_config_and_metadata_reach_the_run(client: LangGraphClient) -> None:
    thread = await client.threads.create()
    run = await client.runs.create(
        thread["thread_id"],
        "trivial",
        input={"x": 1},
        metadata={"team": "support"},
        config={"tags": ["t1"], "configurable": {"user": "u1"}},
    )
    await client.runs.join(thread["thread_id"], run["run_id"])
    got = await client.runs.get(thread["thread_id"], run["run_id"])
    assert got["metadata"] == {"team": "support"}
    history = await client.threads.get_history(thread["thread_id"])
    assert history[0]["metadata"]["run_id"] == run["run_id"]
    assert history[0]["metadata"]["team"] == "support"
    assert history[0]["metadata"]["user"] == "u1"
