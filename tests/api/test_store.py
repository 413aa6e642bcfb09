"""The long-term store through langgraph-sdk against the live server (TTL on, no index)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import NotFoundError, UnprocessableEntityError

from tests.conftest import LiveServer, eventually


def root() -> str:
    """A namespace root of this test's own, so tests sharing the server never meet."""
    return f"t{uuid.uuid4().hex}"


async def test_put_get_update_delete(client: LangGraphClient) -> None:
    ns = [root(), "prefs"]
    assert await client.store.put_item(ns, "theme", {"color": "dark", "size": 3}) is None
    item = await client.store.get_item(ns, "theme")
    assert item["namespace"] == ns
    assert item["key"] == "theme"
    assert item["value"] == {"color": "dark", "size": 3}
    created = datetime.fromisoformat(item["created_at"])
    assert created.tzinfo is not None
    assert item["created_at"] == item["updated_at"]

    await client.store.put_item(ns, "theme", {"color": "light"}, index=False)
    again = await client.store.get_item(ns, "theme")
    assert again["value"] == {"color": "light"}  # replaced, not merged
    assert again["created_at"] == item["created_at"]
    assert datetime.fromisoformat(again["updated_at"]) >= created

    with pytest.raises(NotFoundError):
        await client.store.get_item(ns, "missing")
    with pytest.raises(NotFoundError):
        await client.store.get_item([root()], "theme")  # same key, other namespace

    assert await client.store.delete_item(ns, "theme") is None
    with pytest.raises(NotFoundError) as err:
        await client.store.get_item(ns, "theme")
    assert err.value.code == "item_not_found"
    await client.store.delete_item(ns, "theme")  # deleting twice is fine


async def test_put_with_ttl_expires_after_the_sweep(
    client: LangGraphClient, live_server: LiveServer
) -> None:
    ns = [root()]
    await client.store.put_item(ns, "short", {"v": 1}, ttl=0.001)  # minutes
    await client.store.put_item(ns, "long", {"v": 2}, ttl=60)
    await client.store.put_item(ns, "forever", {"v": 3})
    assert (await client.store.get_item(ns, "short"))["value"] == {"v": 1}
    store = live_server.app.state.runtime.storage.store

    async def swept() -> bool:
        # the sweeper runs every store.ttl.sweep_interval_minutes; run it now
        sweep = asyncio.run_coroutine_threadsafe(store.sweep_ttl(), live_server.loop)
        await asyncio.wrap_future(sweep)
        try:
            await client.store.get_item(ns, "short")
        except NotFoundError:
            return True
        return False

    # Once the TTL has passed by the database's clock (SQLite's CURRENT_TIMESTAMP,
    # used by the sweep, has 1 s steps), a sweep removes the item.
    await eventually(swept, interval=0.2)
    assert (await client.store.get_item(ns, "long"))["value"] == {"v": 2}
    assert (await client.store.get_item(ns, "forever"))["value"] == {"v": 3}


async def test_put_with_index_fields_is_refused_without_index(client: LangGraphClient) -> None:
    with pytest.raises(UnprocessableEntityError) as err:
        await client.store.put_item([root()], "k", {"text": "hi"}, index=["text"])
    assert "store.index" in str(err.value.body)


async def test_search(client: LangGraphClient) -> None:
    r = root()
    for i in range(5):
        await client.store.put_item(
            [r, "docs"], f"d{i}", {"n": i, "kind": "even" if i % 2 == 0 else "odd"}
        )
    await client.store.put_item([r, "docs", "archive"], "old", {"n": 100, "kind": "even"})
    await client.store.put_item([r, "other"], "o", {"n": 1, "kind": "odd"})

    everything = (await client.store.search_items([r], limit=100))["items"]
    assert len(everything) == 7
    docs = (await client.store.search_items([r, "docs"], limit=100))["items"]
    assert {i["key"] for i in docs} == {"d0", "d1", "d2", "d3", "d4", "old"}  # prefix match
    archive = (await client.store.search_items([r, "docs", "archive"]))["items"]
    assert [(i["namespace"], i["key"]) for i in archive] == [([r, "docs", "archive"], "old")]

    odd = (await client.store.search_items([r, "docs"], filter={"kind": "odd"}))["items"]
    assert {i["key"] for i in odd} == {"d1", "d3"}
    assert all(i["value"]["kind"] == "odd" for i in odd)
    big = (await client.store.search_items([r], filter={"n": {"$gte": 3}}, limit=100))["items"]
    assert {i["key"] for i in big} == {"d3", "d4", "old"}
    both = await client.store.search_items([r], filter={"kind": "even", "n": 2})
    assert [i["key"] for i in both["items"]] == ["d2"]

    page1 = (await client.store.search_items([r, "docs"], limit=4))["items"]
    page2 = (await client.store.search_items([r, "docs"], limit=4, offset=4))["items"]
    assert len(page1) == 4 and len(page2) == 2
    assert {i["key"] for i in page1} | {i["key"] for i in page2} == {i["key"] for i in docs}
    assert (await client.store.search_items([r], filter={"kind": "none"}))["items"] == []


async def test_search_with_query_needs_an_index(client: LangGraphClient) -> None:
    with pytest.raises(UnprocessableEntityError) as err:
        await client.store.search_items([root()], query="semantic please")
    assert err.value.response.status_code == 422
    assert "store.index" in str(err.value.body)


async def test_list_namespaces(client: LangGraphClient) -> None:
    r = root()
    for ns in ([r, "a", "x"], [r, "a", "y"], [r, "b", "x"], [r, "c"], [r, "a", "y", "deep"]):
        await client.store.put_item(ns, "k", {"v": 1})

    async def names(**kw: object) -> list[list[str]]:
        return sorted((await client.store.list_namespaces(**kw))["namespaces"])  # type: ignore[arg-type]

    assert await names(prefix=[r]) == [
        [r, "a", "x"],
        [r, "a", "y"],
        [r, "a", "y", "deep"],
        [r, "b", "x"],
        [r, "c"],
    ]
    assert await names(prefix=[r, "a"]) == [[r, "a", "x"], [r, "a", "y"], [r, "a", "y", "deep"]]
    assert await names(prefix=[r], suffix=["x"]) == [[r, "a", "x"], [r, "b", "x"]]
    assert await names(prefix=[r], max_depth=2) == [[r, "a"], [r, "b"], [r, "c"]]
    assert await names(prefix=[r, "a"], max_depth=3) == [[r, "a", "x"], [r, "a", "y"]]
    assert len(await names(prefix=[r], limit=2)) == 2
    first = (await client.store.list_namespaces(prefix=[r], limit=3))["namespaces"]
    rest = (await client.store.list_namespaces(prefix=[r], limit=3, offset=3))["namespaces"]
    assert len(rest) == 2 and not set(map(tuple, first)) & set(map(tuple, rest))
    assert await names(prefix=[root()]) == []
