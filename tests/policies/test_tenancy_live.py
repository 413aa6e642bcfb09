"""Tenants through a live server (SQLite, and PostgreSQL + Redis): one tenant's key
cannot read, list, count, join, stream, cancel, update or delete another tenant's
threads, runs, crons, store items, assistants or usage, on every route family; ids of
another tenant answer 404 as missing ones do; an admin key sees every tenant."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import NotFoundError

from tests.conftest import LiveServer, make_key

PROJECT = Path(__file__).parent / "auth_project"


@pytest.fixture(scope="module", params=["sqlite", "postgres+redis"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with contextlib.ExitStack() as stack:
        extra: dict[str, Any] = {}
        if request.param != "sqlite":
            from tests.pg import fresh_database_sync
            from tests.redis_server import REDIS_URL, fresh_prefix

            extra = {
                "database_url": stack.enter_context(fresh_database_sync()),
                "redis_url": REDIS_URL,
                "redis_prefix": stack.enter_context(fresh_prefix()),
            }
        live = LiveServer(
            tmp_path_factory.mktemp("tenancy"),
            config=PROJECT / "dockyard.yaml",
            auth={"required": True, "cache_seconds": 0},
            **extra,
        ).start()
        yield live
        live.stop()


@dataclass
class Tenant:
    key: str
    sdk: LangGraphClient
    http: httpx.AsyncClient


@pytest.fixture
async def tenants(server: LiveServer) -> AsyncIterator[tuple[Tenant, Tenant, Tenant]]:
    out = []
    suffix = uuid.uuid4().hex[:6]
    for tenant, scopes in ((f"a{suffix}", []), (f"b{suffix}", []), ("ops", ["admin"])):
        key = make_key(server, tenant=tenant, scopes=scopes)
        out.append(
            Tenant(
                key,
                get_client(url=server.url, api_key=key),
                httpx.AsyncClient(base_url=server.url, headers={"x-api-key": key}, timeout=30),
            )
        )
    try:
        yield out[0], out[1], out[2]
    finally:
        for t in out:
            await t.sdk.aclose()
            await t.http.aclose()


async def missing(call: Awaitable[Any]) -> None:
    # langgraph-sdk raises its NotFoundError, or httpx's error on some routes (join).
    with pytest.raises((NotFoundError, httpx.HTTPStatusError)) as err:
        await call
    assert err.value.response.status_code == 404


async def test_threads_and_runs_are_the_tenants_own(
    tenants: tuple[Tenant, Tenant, Tenant],
) -> None:
    a, b, admin = tenants
    thread = await a.sdk.threads.create(metadata={"topic": "refunds"})
    tid = thread["thread_id"]
    assert thread["metadata"]["dockyard_tenant"].startswith("a")
    done = await a.sdk.runs.create(tid, "memo", input={"text": "one"})
    await a.sdk.runs.join(tid, done["run_id"])
    slow = await a.sdk.runs.create(tid, "slow", input={"delay": 30}, multitask_strategy="enqueue")

    # Reads of another tenant's thread and runs: 404, as if missing.
    await missing(b.sdk.threads.get(tid))
    await missing(b.sdk.threads.get_state(tid))
    await missing(b.sdk.threads.get_history(tid))
    await missing(b.sdk.threads.update(tid, metadata={"x": 1}))
    await missing(b.sdk.threads.copy(tid))
    await missing(b.sdk.runs.list(tid))
    await missing(b.sdk.runs.get(tid, done["run_id"]))
    await missing(b.sdk.runs.join(tid, done["run_id"]))
    await missing(b.sdk.runs.cancel(tid, slow["run_id"]))
    await missing(b.sdk.runs.delete(tid, done["run_id"]))
    with pytest.raises(NotFoundError):
        async for _ in b.sdk.runs.join_stream(tid, done["run_id"]):
            pass
    assert (await b.http.get(f"/threads/{tid}/stream")).status_code == 404
    # Writes onto it: a run, a state update, a cancel by thread, a delete.
    await missing(b.sdk.runs.create(tid, "memo", input={"text": "intruder"}))
    await missing(b.sdk.runs.wait(tid, "memo", input={"text": "intruder"}, if_not_exists="create"))
    await missing(b.sdk.threads.update_state(tid, {"text": "x"}))
    r = await b.http.post("/runs/cancel", json={"thread_id": tid})
    assert r.status_code == 404
    await missing(b.sdk.threads.delete(tid))
    # Searches and counts never list it; asking for the tenant key explicitly finds nothing.
    assert tid not in {t["thread_id"] for t in await b.sdk.threads.search(limit=1000)}
    assert await b.sdk.threads.count(metadata={"topic": "refunds"}) == 0
    theirs = {"dockyard_tenant": thread["metadata"]["dockyard_tenant"]}
    assert await b.sdk.threads.search(metadata=theirs) == []
    # "cancel every running run" cancels the caller's own only.
    r = await b.http.post("/runs/cancel", json={"status": "all"})
    assert r.status_code == 204
    assert (await a.sdk.runs.get(tid, slow["run_id"]))["status"] in ("pending", "running")

    # The owner and the admin see it all.
    assert tid in {t["thread_id"] for t in await a.sdk.threads.search(limit=1000)}
    assert (await admin.sdk.threads.get(tid))["thread_id"] == tid
    assert await admin.sdk.threads.count(metadata={"topic": "refunds"}) >= 1
    await a.sdk.runs.cancel(tid, slow["run_id"], wait=True)
    await a.sdk.threads.delete(tid)


async def test_metadata_cannot_forge_another_tenant(
    tenants: tuple[Tenant, Tenant, Tenant],
) -> None:
    a, b, admin = tenants
    theirs = (await a.sdk.threads.create())["metadata"]["dockyard_tenant"]
    r = await b.http.post("/threads", json={"metadata": {"dockyard_tenant": theirs}})
    assert r.status_code == 422 and r.json()["code"] == "reserved_metadata"
    mine = await b.sdk.threads.create()
    r = await b.http.patch(
        f"/threads/{mine['thread_id']}", json={"metadata": {"dockyard_tenant": theirs}}
    )
    assert r.status_code == 422 and r.json()["param"] == "metadata.dockyard_tenant"
    r = await b.http.post(
        "/runs/wait",
        json={"assistant_id": "memo", "input": {}, "metadata": {"dockyard_key_id": "key_x"}},
    )
    assert r.status_code == 422
    # An admin may act for a tenant.
    made = await admin.sdk.threads.create(metadata={"dockyard_tenant": theirs})
    assert (await a.sdk.threads.get(made["thread_id"]))["thread_id"] == made["thread_id"]
    # A thread id another tenant holds is taken, without showing it.
    r = await b.http.post(
        "/threads", json={"thread_id": made["thread_id"], "if_exists": "do_nothing"}
    )
    assert r.status_code == 409 and "values" not in r.text


async def test_stateless_runs_and_crons(tenants: tuple[Tenant, Tenant, Tenant]) -> None:
    a, b, _ = tenants
    run = await a.sdk.runs.create(None, "slow", input={"delay": 30})
    r = await b.http.post("/runs/cancel", json={"status": "all"})
    assert r.status_code == 204
    cron = await a.sdk.crons.create("memo", schedule="0 0 1 1 *", input={"text": "yearly"})
    assert cron["metadata"]["dockyard_tenant"].startswith("a")
    assert cron["cron_id"] not in {c["cron_id"] for c in await b.sdk.crons.search(limit=1000)}
    assert await b.sdk.crons.count() == 0
    await missing(b.sdk.crons.update(cron["cron_id"], schedule="0 0 2 1 *"))
    await missing(b.sdk.crons.delete(cron["cron_id"]))
    assert cron["cron_id"] in {c["cron_id"] for c in await a.sdk.crons.search(limit=1000)}
    await a.sdk.crons.delete(cron["cron_id"])
    await a.sdk.runs.cancel(run["thread_id"], run["run_id"], wait=True)


async def test_store_namespaces_are_the_tenants_own(
    tenants: tuple[Tenant, Tenant, Tenant],
) -> None:
    a, b, admin = tenants
    await a.sdk.store.put_item(["prefs", "u1"], "lang", {"v": "ko"})
    await b.sdk.store.put_item(["prefs", "u1"], "lang", {"v": "en"})
    assert (await a.sdk.store.get_item(["prefs", "u1"], "lang"))["value"] == {"v": "ko"}
    assert (await b.sdk.store.get_item(["prefs", "u1"], "lang"))["value"] == {"v": "en"}
    await a.sdk.store.put_item(["only-a"], "k", {"v": 1})
    await missing(b.sdk.store.get_item(["only-a"], "k"))
    found = await b.sdk.store.search_items(["only-a"])
    assert found["items"] == []
    spaces = (await b.sdk.store.list_namespaces())["namespaces"]
    assert ["only-a"] not in spaces and ["prefs", "u1"] in spaces
    await b.sdk.store.delete_item(["only-a"], "k")  # deletes nothing of a's
    assert (await a.sdk.store.get_item(["only-a"], "k"))["value"] == {"v": 1}
    # A graph run by a tenant uses the tenant's namespaces too.
    first = await a.sdk.runs.wait(None, "memo", input={"text": "a-note"})
    other = await b.sdk.runs.wait(None, "memo", input={"text": "b-note"})
    assert isinstance(first, dict) and isinstance(other, dict)
    assert first["before"] != "b-note" and other["before"] != "a-note"
    note = await a.sdk.store.get_item(["notes"], "last")
    assert note["value"] == {"text": "a-note"}
    # The admin sees both, each under its tenant's prefix.
    tenant_a = (await a.sdk.threads.create())["metadata"]["dockyard_tenant"]
    item = await admin.sdk.store.get_item(["dockyard_tenant", tenant_a, "notes"], "last")
    assert item["value"] == {"text": "a-note"}


async def test_assistants_openai_and_usage(
    server: LiveServer, tenants: tuple[Tenant, Tenant, Tenant]
) -> None:
    a, b, admin = tenants
    mine = await a.sdk.assistants.create("memo", name="a-memo")
    await missing(b.sdk.assistants.get(mine["assistant_id"]))
    assert mine["assistant_id"] not in {
        x["assistant_id"] for x in await b.sdk.assistants.search(limit=100)
    }
    await missing(b.sdk.runs.wait(None, mine["assistant_id"], input={}))
    await missing(b.sdk.assistants.update(mine["assistant_id"], name="stolen"))
    await missing(b.sdk.assistants.delete(mine["assistant_id"]))
    # The graphs' own assistants are everyone's to run, an admin's to change.
    shared = await b.sdk.assistants.search(graph_id="memo", metadata={"created_by": "system"})
    assert len(shared) == 1
    r = await b.http.patch(f"/assistants/{shared[0]['assistant_id']}", json={"name": "x"})
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    # OpenAI: another tenant's assistants are not listed as models.
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": b.key}) as h:
        ids = {m["id"] for m in (await h.get("/v1/models")).json()["data"]}
    assert "memo" in ids and mine["assistant_id"] not in ids
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": a.key}) as h:
        assert mine["assistant_id"] in {m["id"] for m in (await h.get("/v1/models")).json()["data"]}
    # OpenAI: another tenant's thread as X-Thread-Id is not found.
    tid = (await a.sdk.threads.create())["thread_id"]
    oai = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=b.key, max_retries=0)
    try:
        with pytest.raises(openai.NotFoundError):
            await oai.chat.completions.create(
                model="memo",
                messages=[{"role": "user", "content": "hi"}],
                extra_headers={"X-Thread-Id": tid},
            )
    finally:
        await oai.close()
    # /usage answers the caller's tenant only; another tenant's name is not found.
    r = await b.http.get("/usage", params={"tenant": "ops"})
    assert r.status_code == 404
    assert (await b.http.get("/usage")).status_code == 200
    assert (await admin.http.get("/usage", params={"by": "tenant"})).status_code == 200
