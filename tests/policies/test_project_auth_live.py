"""A langgraph.json with ``auth: {path: "./auth.py:auth"}`` (a ``langgraph_sdk.Auth``),
loaded as it is and enforced through a live server as LangGraph Platform enforces it:
its ``authenticate`` handler says who a request is (401 from its HTTPException), its
``@auth.on`` handlers add metadata on create and filter what each user reads, changes or
lists (another's answers 404), a handler returning False or raising 403 refuses, store
handlers move namespaces; a dockyard key still authenticates first."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import NotFoundError, PermissionDeniedError

from dockyard.settings import load_settings
from tests.conftest import LiveServer, make_key

PROJECT = Path(__file__).parent / "lg_auth_project"


def test_langgraph_json_auth_path_loads_as_it_is() -> None:
    settings = load_settings(PROJECT / "langgraph.json")
    assert settings.auth.path == "./auth.py:auth" and settings.auth.required


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # The file's auth block as it is (the test servers' open default replaced).
    auth = load_settings(PROJECT / "langgraph.json").auth.model_dump()
    live = LiveServer(
        tmp_path_factory.mktemp("lg-auth"), config=PROJECT / "langgraph.json", auth=auth
    ).start()
    yield live
    live.stop()


@pytest.fixture
async def users(server: LiveServer) -> AsyncIterator[dict[str, LangGraphClient]]:
    clients = {
        name: get_client(url=server.url, headers={"Authorization": f"Bearer token-{name}"})
        for name in ("alice", "bob", "carol")
    }
    yield clients
    for c in clients.values():
        await c.aclose()


async def test_authenticate_handler_decides_who(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as h:
        r = await h.post("/threads/search", json={})
        assert r.status_code == 401 and r.json() == {
            "detail": "unknown token",
            "code": "unauthorized",
        }
        r = await h.post(
            "/threads/search", json={}, headers={"Authorization": "Bearer token-alice"}
        )
        assert r.status_code == 200
        assert (await h.get("/health")).status_code == 200


async def test_handlers_own_threads_runs_and_searches(users: dict[str, LangGraphClient]) -> None:
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    thread = await alice.threads.create(metadata={"topic": "t"})
    assert thread["metadata"]["owner"] == "alice"  # the create handler added it
    tid = thread["thread_id"]
    out = await alice.runs.wait(tid, "memo", input={"text": "hello"})
    assert isinstance(out, dict)
    runs = await alice.runs.list(tid)
    assert runs[0]["metadata"]["owner"] == "alice"
    for call in (
        bob.threads.get(tid),
        bob.threads.get_state(tid),
        bob.threads.update(tid, metadata={"x": 1}),
        bob.threads.delete(tid),
        bob.runs.list(tid),
        bob.runs.get(tid, runs[0]["run_id"]),
        bob.runs.wait(tid, "memo", input={"text": "intruder"}),
    ):
        with pytest.raises((NotFoundError, httpx.HTTPStatusError)) as err:
            await call
        assert err.value.response.status_code == 404
    assert tid not in {t["thread_id"] for t in await bob.threads.search(limit=100)}
    assert tid in {t["thread_id"] for t in await alice.threads.search(limit=100)}
    assert await bob.threads.count(metadata={"topic": "t"}) == 0
    # A handler raising HTTPException(403): carol may not start runs.
    own = await carol.threads.create()
    with pytest.raises((PermissionDeniedError, httpx.HTTPStatusError)) as denied:
        await carol.runs.wait(own["thread_id"], "memo", input={"text": "x"})
    assert denied.value.response.status_code == 403
    assert denied.value.response.json()["detail"] == "runs:create needed"


async def test_handler_returning_false_refuses(users: dict[str, LangGraphClient]) -> None:
    alice = users["alice"]
    made = await alice.assistants.create("memo", name="mine")
    assert made["metadata"]["owner"] == "alice"
    with pytest.raises(PermissionDeniedError) as err:
        await alice.assistants.delete(made["assistant_id"])
    assert err.value.response.json()["code"] == "forbidden"
    with pytest.raises(NotFoundError):
        await users["bob"].assistants.get(made["assistant_id"])


async def test_store_handler_moves_namespaces(
    server: LiveServer, users: dict[str, LangGraphClient]
) -> None:
    alice, bob = users["alice"], users["bob"]
    await alice.store.put_item(["prefs"], "lang", {"v": "ko"})
    await bob.store.put_item(["prefs"], "lang", {"v": "en"})
    assert (await alice.store.get_item(["prefs"], "lang"))["value"] == {"v": "ko"}
    assert (await bob.store.get_item(["prefs"], "lang"))["value"] == {"v": "en"}
    spaces = (await alice.store.list_namespaces())["namespaces"]
    assert ["alice", "prefs"] in spaces and ["bob", "prefs"] not in spaces


async def test_a_dockyard_key_authenticates_first(server: LiveServer) -> None:
    key = make_key(server, tenant="acme")
    client = get_client(url=server.url, api_key=key)
    try:
        thread = await client.threads.create()
        # The handlers still apply: the key's user is its id.
        assert thread["metadata"]["owner"].startswith("key_")
        assert thread["metadata"]["dockyard_tenant"] == "acme"
    finally:
        await client.aclose()
