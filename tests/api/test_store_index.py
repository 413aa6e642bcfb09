"""Semantic store search with an embedding index, on both backends: SQLite (sqlite-vec
through pysqlite3) and PostgreSQL (pgvector when the server has it, else dockyard's
exact-scan fallback, which is what this machine's PostgreSQL exercises)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator

import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from tests.conftest import FIXTURE_PROJECT, LiveServer


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def index_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    project = tmp_path_factory.mktemp("index-project")
    (project / "dockyard.yaml").write_text(
        f"graphs:\n  trivial: {FIXTURE_PROJECT / 'graphs.py'}:trivial\n"
        "store:\n  index: {dims: 64, embed: 'fake:64', fields: ['text']}\n"
    )
    if request.param == "sqlite":
        server = LiveServer(project / "data", config=project / "dockyard.yaml").start()
        yield server
        server.stop()
        return
    from tests.pg import fresh_database_sync

    with fresh_database_sync() as url:
        server = LiveServer(
            project / "data", config=project / "dockyard.yaml", database_url=url
        ).start()
        yield server
        server.stop()


@pytest.fixture
async def index_client(index_server: LiveServer) -> AsyncIterator[LangGraphClient]:
    c = get_client(url=index_server.url)
    yield c
    await c.aclose()


async def test_query_ranks_by_meaning(index_client: LangGraphClient) -> None:
    c = index_client
    await c.store.put_item(["docs"], "refund", {"text": "refund policy for damaged items"})
    await c.store.put_item(["docs"], "ship", {"text": "shipping times to europe"})
    await c.store.put_item(["docs"], "hours", {"text": "damaged refund"}, index=False)
    found = (await c.store.search_items(["docs"], query="refund for a damaged item"))["items"]
    keys = [i["key"] for i in found]
    assert keys[0] == "refund"
    assert "hours" not in keys  # index=False: stored, not embedded
    assert found[0]["score"] > found[-1]["score"]
    plain = (await c.store.search_items(["docs"], filter={"text": "opening"}))["items"]
    assert plain == []
    assert (await c.store.get_item(["docs"], "hours"))["value"] == {"text": "damaged refund"}


async def test_index_fields_per_item(index_client: LangGraphClient) -> None:
    c = index_client
    await c.store.put_item(["notes"], "n1", {"title": "apples", "text": "pears"}, index=["title"])
    await c.store.put_item(["notes"], "n2", {"title": "pears", "text": "apples"})
    found = (await c.store.search_items(["notes"], query="apples"))["items"]
    assert [i["key"] for i in found][:2] == ["n1", "n2"]


async def test_updates_and_deletes_change_what_a_query_finds(
    index_client: LangGraphClient,
) -> None:
    c = index_client
    await c.store.put_item(["upd"], "a", {"text": "volcano eruption warning"})
    await c.store.put_item(["upd"], "b", {"text": "garden flowers"})
    first = (await c.store.search_items(["upd"], query="volcano eruption"))["items"]
    assert first[0]["key"] == "a"

    await c.store.put_item(["upd"], "a", {"text": "garden flowers in spring"})
    found = (await c.store.search_items(["upd"], query="volcano eruption"))["items"]
    rescored = {i["key"]: i["score"] for i in found}
    assert rescored["a"] < first[0]["score"]  # scored on the new text, not the old one
    top = (await c.store.search_items(["upd"], query="flowers in spring"))["items"]
    assert top[0]["key"] == "a"

    await c.store.delete_item(["upd"], "a")
    left = (await c.store.search_items(["upd"], query="flowers in spring"))["items"]
    assert [i["key"] for i in left] == ["b"]


async def test_query_with_filter_prefix_and_paging(index_client: LangGraphClient) -> None:
    c = index_client
    for ns, key, text, kind in [
        (["lib", "x"], "k1", "river boats", "a"),
        (["lib", "x"], "k2", "river fishing boats", "b"),
        (["lib", "y"], "k3", "mountain boats", "a"),
        (["libz"], "k4", "river boats", "a"),
    ]:
        await c.store.put_item(ns, key, {"text": text, "kind": kind})
    everything = (await c.store.search_items(["lib"], query="river boats", limit=10))["items"]
    keys = [i["key"] for i in everything]
    assert sorted(keys) == ["k1", "k2", "k3"]  # ("libz",) is not under ("lib",)
    assert keys[0] == "k1"
    assert all(a["score"] >= b["score"] for a, b in itertools.pairwise(everything))
    filtered = await c.store.search_items(["lib"], query="river boats", filter={"kind": "a"})
    kind_a = filtered["items"]
    assert [i["key"] for i in kind_a] == [k for k in keys if k in ("k1", "k3")]
    page = (await c.store.search_items(["lib"], query="river boats", limit=1, offset=1))["items"]
    assert [i["key"] for i in page] == keys[1:2]
