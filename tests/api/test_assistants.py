"""Assistants through langgraph-sdk against the live server."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import ConflictError, NotFoundError

from tests.conftest import LiveServer

# LangGraph's namespace for default assistant ids: scripts that hard-code them keep working.
DEFAULT_NS = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")


def tag() -> dict[str, Any]:
    """Metadata that marks one test's assistants apart from everything else on the server."""
    return {"suite": uuid.uuid4().hex}


async def test_one_default_assistant_per_graph(
    client: LangGraphClient, live_server: LiveServer
) -> None:
    graphs = list(live_server.settings.graphs)
    assert {"trivial", "hitl", "nested", "factory"} <= set(graphs)
    for graph_id in graphs:
        found = await client.assistants.search(
            graph_id=graph_id, metadata={"created_by": "system"}, limit=100
        )
        assert len(found) == 1, graph_id
        default = found[0]
        assert default["assistant_id"] == str(uuid.uuid5(DEFAULT_NS, graph_id))
        assert (default["graph_id"], default["name"], default["version"]) == (graph_id, graph_id, 1)
        assert await client.assistants.get(graph_id) == default  # a graph name resolves to it
        assert await client.assistants.get(default["assistant_id"]) == default
    assert await client.assistants.count(metadata={"created_by": "system"}) == len(graphs)


async def test_create_and_get(client: LangGraphClient) -> None:
    aid = str(uuid.uuid4())
    meta = {**tag(), "owner": "ops"}
    created = await client.assistants.create(
        "custom",
        config={"configurable": {"temperature": 0.2}},
        context={"greeting": "hi"},
        metadata=meta,
        assistant_id=aid,
        name="Greeter",
        description="says hi",
    )
    assert created["assistant_id"] == aid
    assert created["graph_id"] == "custom"
    assert created["config"] == {"configurable": {"temperature": 0.2}}
    assert created["context"] == {"greeting": "hi"}
    assert created["metadata"] == meta
    assert (created["name"], created["description"], created["version"]) == (
        "Greeter",
        "says hi",
        1,
    )
    assert created["created_at"] == created["updated_at"]
    assert created["created_at"].endswith("+00:00")
    assert await client.assistants.get(aid) == created
    # The assistant's context reaches the graph.
    out = await client.runs.wait(None, aid, input={})
    assert out == {"said": "hi"}

    unnamed = await client.assistants.create("trivial", metadata=tag())
    uuid.UUID(unnamed["assistant_id"])
    assert unnamed["name"] == "Untitled" and unnamed["description"] is None


async def test_create_if_exists(client: LangGraphClient) -> None:
    aid = str(uuid.uuid4())
    first = await client.assistants.create("trivial", assistant_id=aid, name="first")
    with pytest.raises(ConflictError) as err:
        await client.assistants.create("trivial", assistant_id=aid, name="second")
    assert err.value.response.status_code == 409
    assert err.value.code == "assistant_exists"
    again = await client.assistants.create(
        "hitl", assistant_id=aid, name="second", if_exists="do_nothing"
    )
    assert again == first
    assert (await client.assistants.get(aid))["name"] == "first"


async def test_create_for_unknown_graph_is_404(client: LangGraphClient) -> None:
    with pytest.raises(NotFoundError) as err:
        await client.assistants.create("no-such-graph")
    assert err.value.code == "graph_not_found"
    assert "trivial" in str(err.value.body)  # the message lists the declared graphs


async def test_update_makes_a_new_version(client: LangGraphClient) -> None:
    meta = tag()
    a = await client.assistants.create("trivial", metadata={**meta, "stage": "dev"}, name="v1")
    aid = a["assistant_id"]
    b = await client.assistants.update(
        aid, metadata={"stage": "prod", "extra": 1}, name="v2", config={"tags": ["t"]}
    )
    assert b["version"] == 2
    assert b["metadata"] == {**meta, "stage": "prod", "extra": 1}  # merged
    assert (b["name"], b["config"], b["graph_id"]) == ("v2", {"tags": ["t"]}, "trivial")
    assert b["created_at"] == a["created_at"] and b["updated_at"] > a["updated_at"]
    assert await client.assistants.get(aid) == b

    c = await client.assistants.update(aid, graph_id="hitl", context={"k": "v"})
    assert (c["version"], c["graph_id"], c["context"], c["name"]) == (3, "hitl", {"k": "v"}, "v2")
    schemas = await client.assistants.get_schemas(aid)
    assert schemas["graph_id"] == "hitl"

    with pytest.raises(NotFoundError):
        await client.assistants.update(aid, graph_id="no-such-graph")
    assert (await client.assistants.get(aid))["version"] == 3


async def test_versions_and_set_latest(client: LangGraphClient) -> None:
    a = await client.assistants.create("trivial", metadata={**tag(), "stage": "dev"}, name="v1")
    aid = a["assistant_id"]
    await client.assistants.update(aid, name="v2", metadata={"stage": "prod"})
    await client.assistants.update(aid, name="v3", config={"recursion_limit": 5})

    versions = await client.assistants.get_versions(aid)
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert [v["name"] for v in versions] == ["v3", "v2", "v1"]
    assert all(v["assistant_id"] == aid for v in versions)
    assert versions[0]["config"] == {"recursion_limit": 5}
    assert [v["version"] for v in await client.assistants.get_versions(aid, limit=2)] == [3, 2]
    assert [v["version"] for v in await client.assistants.get_versions(aid, offset=2)] == [1]
    prod = await client.assistants.get_versions(aid, metadata={"stage": "prod"})
    assert [v["version"] for v in prod] == [3, 2]

    latest = await client.assistants.set_latest(aid, 1)
    assert (latest["version"], latest["name"], latest["config"]) == (1, "v1", {})
    assert latest["metadata"]["stage"] == "dev"
    assert (await client.assistants.get(aid))["name"] == "v1"
    assert len(await client.assistants.get_versions(aid)) == 3  # nothing is lost
    nxt = await client.assistants.update(aid, name="v4")
    assert nxt["version"] == 4
    with pytest.raises(NotFoundError) as err:
        await client.assistants.set_latest(aid, 42)
    assert err.value.code == "version_not_found"


async def test_delete(client: LangGraphClient) -> None:
    a = await client.assistants.create("trivial", metadata=tag())
    aid = a["assistant_id"]
    await client.assistants.update(aid, name="v2")
    assert await client.assistants.delete(aid) is None
    with pytest.raises(NotFoundError):
        await client.assistants.get(aid)
    with pytest.raises(NotFoundError):
        await client.assistants.get_versions(aid)
    with pytest.raises(NotFoundError):
        await client.assistants.delete(aid)
    assert await client.assistants.get("trivial")  # the graph's default is untouched


async def test_search(client: LangGraphClient) -> None:
    meta = tag()
    made = [
        await client.assistants.create("trivial", metadata={**meta, "n": i}, name=name)
        for i, name in enumerate(["charlie", "alpha", "bravo"])
    ]
    other = await client.assistants.create(
        "hitl", metadata={**meta, "n": 3, "nested": {"a": 1, "b": 2}}, name="delta"
    )

    found = await client.assistants.search(metadata=meta)
    # newest first by default
    assert [a["name"] for a in found] == ["delta", "bravo", "alpha", "charlie"]
    assert found[-1] == made[0]
    by_graph = await client.assistants.search(metadata=meta, graph_id="trivial")
    assert {a["assistant_id"] for a in by_graph} == {a["assistant_id"] for a in made}
    assert [a["name"] for a in await client.assistants.search(metadata={**meta, "n": 1})] == [
        "alpha"
    ]
    nested = await client.assistants.search(metadata={**meta, "nested": {"b": 2}})
    assert [a["assistant_id"] for a in nested] == [other["assistant_id"]]
    assert [a["name"] for a in await client.assistants.search(metadata=meta, name="ALPH")] == [
        "alpha"
    ]

    asc = await client.assistants.search(metadata=meta, sort_by="name", sort_order="asc")
    assert [a["name"] for a in asc] == ["alpha", "bravo", "charlie", "delta"]
    desc = await client.assistants.search(metadata=meta, sort_by="name", sort_order="desc")
    assert [a["name"] for a in desc] == ["delta", "charlie", "bravo", "alpha"]

    page1 = await client.assistants.search(
        metadata=meta, sort_by="name", sort_order="asc", limit=3, response_format="object"
    )
    assert [a["name"] for a in page1["assistants"]] == ["alpha", "bravo", "charlie"]
    assert page1["next"] == "3"
    page2 = await client.assistants.search(
        metadata=meta, sort_by="name", sort_order="asc", limit=3, offset=3, response_format="object"
    )
    assert [a["name"] for a in page2["assistants"]] == ["delta"]
    assert page2["next"] is None

    slim = await client.assistants.search(metadata=meta, limit=1, select=["assistant_id", "name"])
    assert slim == [{"assistant_id": other["assistant_id"], "name": "delta"}]
    assert await client.assistants.search(metadata={**meta, "n": 99}) == []


async def test_count(client: LangGraphClient) -> None:
    meta = tag()
    for graph_id in ("trivial", "trivial", "hitl"):
        await client.assistants.create(graph_id, metadata=meta, name=f"count-{graph_id}")
    assert await client.assistants.count(metadata=meta) == 3
    assert await client.assistants.count(metadata=meta, graph_id="trivial") == 2
    assert await client.assistants.count(metadata=meta, name="count-hitl") == 1
    assert await client.assistants.count(metadata={**meta, "absent": True}) == 0


async def test_get_graph(client: LangGraphClient) -> None:
    g = await client.assistants.get_graph("trivial")
    assert {n["id"] for n in g["nodes"]} == {"__start__", "echo", "__end__"}
    assert {(e["source"], e["target"]) for e in g["edges"]} == {
        ("__start__", "echo"),
        ("echo", "__end__"),
    }
    flat = await client.assistants.get_graph("nested")
    assert "sub" in {n["id"] for n in flat["nodes"]}
    xray = await client.assistants.get_graph("nested", xray=True)
    ids = {n["id"] for n in xray["nodes"]}
    assert "sub:inner" in ids and "sub" not in ids
    a = await client.assistants.create("hitl", metadata=tag())
    by_id = await client.assistants.get_graph(a["assistant_id"])
    assert {"prepare", "ask", "finish"} <= {n["id"] for n in by_id["nodes"]}


async def test_get_schemas(client: LangGraphClient) -> None:
    s = await client.assistants.get_schemas("custom")
    assert s["graph_id"] == "custom"
    assert set(s["state_schema"]["properties"]) == {"said", "tag"}
    assert set(s["context_schema"]["properties"]) == {"greeting"}
    assert s["config_schema"] is not None
    h = await client.assistants.get_schemas("hitl")
    assert set(h["state_schema"]["properties"]) == {"x", "approved", "log"}
    assert h["input_schema"] is None or set(h["input_schema"]["properties"]) == {
        "x",
        "approved",
        "log",
    }
    assert h["context_schema"] is None
    f = await client.assistants.get_schemas("factory")  # a graph made by a function
    assert set(f["state_schema"]["properties"]) == {"x"}


async def test_get_subgraphs(client: LangGraphClient) -> None:
    subs = await client.assistants.get_subgraphs("nested")
    assert set(subs) == {"sub"}
    assert set(subs["sub"]["state_schema"]["properties"]) == {"x"}
    assert set(await client.assistants.get_subgraphs("nested", recurse=True)) == {"sub"}
    assert set(await client.assistants.get_subgraphs("nested", namespace="sub")) == {"sub"}
    assert await client.assistants.get_subgraphs("nested", namespace="nope") == {}
    assert await client.assistants.get_subgraphs("trivial") == {}
