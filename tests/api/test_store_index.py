"""Semantic store search on SQLite (sqlite-vec through pysqlite3) with an embedding index."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from tests.conftest import FIXTURE_PROJECT, LiveServer


@pytest.fixture(scope="module")
def index_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    project = tmp_path_factory.mktemp("index-project")
    (project / "dockyard.yaml").write_text(
        f"graphs:\n  trivial: {FIXTURE_PROJECT / 'graphs.py'}:trivial\n"
        "store:\n  index: {dims: 64, embed: 'fake:64', fields: ['text']}\n"
    )
    server = LiveServer(project / "data", config=project / "dockyard.yaml").start()
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
