"""langgraph.json as LangGraph Platform users have it (tests/fixtures/platform), served
live: the project's own app, CORS, the route prefix, webhook URL policy and headers,
and two things LangGraph Studio does (text/plain JSON bodies, ``as_node="__copy__"``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import UnprocessableEntityError

from dockyard.errors import ConfigError
from dockyard.runtime.webhooks import WebhookDispatcher
from tests.conftest import TEST_WEBHOOKS, LiveServer, eventually

PLATFORM = Path(__file__).parent.parent / "fixtures" / "platform" / "langgraph.json"
ORIGIN = "https://studio.example"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("platform"), PLATFORM).start()
    yield server
    server.stop()


@pytest.fixture
async def api(platform: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=platform.url + "/api", timeout=30) as h:
        yield h


@pytest.fixture
async def sdk(platform: LiveServer) -> AsyncIterator[LangGraphClient]:
    c = get_client(url=platform.url + "/api", timeout=30)
    yield c
    await c.aclose()


# -- http.app ------------------------------------------------------------------------------


async def test_the_project_app_serves_its_routes_after_its_lifespan(
    api: httpx.AsyncClient,
) -> None:
    r = await api.get("/hello")
    assert r.status_code == 200
    assert r.json() == {"hello": "world", "started": True}  # its lifespan ran
    assert r.headers["x-project-app"] == "yes"


async def test_project_routes_come_first_and_its_middleware_wraps_dockyard(
    api: httpx.AsyncClient, sdk: LangGraphClient
) -> None:
    assert (await api.get("/ok")).json() == {"ok": "the project's"}  # shadows dockyard's /ok
    info = await api.get("/info")
    assert info.json()["name"] == "dockyard"
    assert info.headers["x-project-app"] == "yes"
    thread = await sdk.threads.create()
    assert await sdk.runs.wait(thread["thread_id"], "trivial", input={"x": 3}) == {"x": 3}
    # An event stream passes through the project's middleware too.
    parts = [p async for p in sdk.runs.stream(thread["thread_id"], "trivial", input={"x": 4})]
    assert [p.event for p in parts][:2] == ["metadata", "values"]
    assert parts[1].data == {"x": 4}
    # A path neither side has: dockyard's JSON 404; a method neither has: 405.
    missing = await api.get("/no/such/route")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert missing.headers["x-project-app"] == "yes"
    assert (await api.delete("/hello")).status_code == 405


async def test_openapi_lists_the_project_routes_with_dockyards(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    paths = spec["paths"]
    assert {"/hello", "/hooks/run-done", "/threads", "/threads/{thread_id}/runs/wait"} <= set(paths)
    assert paths["/ok"]["get"]["summary"] == "Project Ok"  # the route that answers
    assert not any(p.startswith("/store") for p in paths)  # http.disable_store
    assert spec["servers"] == [{"url": "/api"}]
    docs = await api.get("/docs")
    assert docs.status_code == 200 and "/api/openapi.json" in docs.text


# -- http.mount_prefix, http.disable_store ----------------------------------------------------


async def test_every_route_is_under_the_prefix(
    platform: LiveServer, api: httpx.AsyncClient
) -> None:
    async with httpx.AsyncClient(base_url=platform.url) as bare:
        for path in ("/threads/search", "/hello", "/ok", "/openapi.json"):
            r = await bare.get(path) if path != "/threads/search" else await bare.post(path)
            assert r.status_code == 404, path
            assert r.json()["code"] == "not_found" and "/api/" in r.json()["detail"]
    assert (await api.post("/threads/search", json={})).status_code == 200


async def test_disabled_store_answers_404(api: httpx.AsyncClient) -> None:
    r = await api.get("/store/items", params={"namespace": "a", "key": "k"})
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = await api.put("/store/items", json={"namespace": ["a"], "key": "k", "value": {}})
    assert r.status_code == 404
    assert (await api.get("/info")).json()["flags"]["store"] is False


# -- http.cors -------------------------------------------------------------------------------


async def test_cors_preflight_and_simple_requests(api: httpx.AsyncClient) -> None:
    pre = await api.options(
        "/threads",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-api-key",
        },
    )
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == ORIGIN
    assert pre.headers["access-control-allow-credentials"] == "true"
    assert pre.headers["access-control-max-age"] == "120"
    assert {"GET", "POST"} <= set(pre.headers["access-control-allow-methods"].split(", "))
    assert "x-api-key" in pre.headers["access-control-allow-headers"]

    refused = await api.options(
        "/threads",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    delete = await api.options(
        "/threads/x", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "DELETE"}
    )
    assert delete.status_code == 400  # not in allow_methods

    simple = await api.post("/threads/search", json={"limit": 1}, headers={"Origin": ORIGIN})
    assert simple.headers["access-control-allow-origin"] == ORIGIN
    assert simple.headers["access-control-expose-headers"] == "x-pagination-next"


# -- webhooks.url, webhooks.headers -----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.com/done", "require_https"),
        ("https://evil.example/done", "allowed_domains"),
        ("https://hooks.example.com:9443/done", "allowed_ports"),
        ("https://hooks.example.com/" + "x" * 300, "300 characters"),
    ],
)
async def test_disallowed_webhook_urls_are_refused_at_run_creation(
    sdk: LangGraphClient, url: str, why: str
) -> None:
    thread = await sdk.threads.create()
    with pytest.raises(UnprocessableEntityError) as err:
        await sdk.runs.create(thread["thread_id"], "trivial", input={"x": 1}, webhook=url)
    assert why in str(err.value)
    assert await sdk.runs.list(thread["thread_id"]) == []


async def test_allowed_webhook_urls_are_accepted(sdk: LangGraphClient) -> None:
    # A cron checks its runs' fields when created and sends nothing until it fires.
    for url in ("https://hooks.example.com/done", "https://a.hooks.example.com:8443/done"):
        cron = await sdk.crons.create("trivial", schedule="0 0 1 1 *", webhook=url)
        await sdk.crons.delete(cron["cron_id"])


async def test_webhook_to_a_project_route_carries_the_static_headers(
    api: httpx.AsyncClient, sdk: LangGraphClient
) -> None:
    thread = await sdk.threads.create()
    tid = thread["thread_id"]
    # A relative URL is a loopback call: POSTed to this server (under its prefix).
    await sdk.runs.wait(tid, "trivial", input={"x": 7}, webhook="/hooks/run-done")

    async def delivered() -> list[dict[str, Any]]:
        got = (await api.get("/hooks/received")).json()
        return [d for d in got if d["body"]["thread_id"] == tid]

    (hook,) = await eventually(delivered)
    assert hook["headers"]["authorization"] == "Bearer token-from-the-project-env"
    assert hook["headers"]["x-source"] == "dockyard-fixture"
    assert hook["body"]["values"] == {"x": 7} and hook["body"]["status"] == "success"
    run = (await sdk.runs.list(tid))[0]
    assert run["webhook"]["url"] == "/hooks/run-done"
    assert run["webhook"]["status"] == "delivered"


# -- LangGraph Studio ------------------------------------------------------------------------


async def test_text_plain_json_bodies_are_read_as_json(api: httpx.AsyncClient) -> None:
    plain = {"Content-Type": "text/plain;charset=UTF-8"}
    r = await api.post("/threads", content=b'{"metadata": {"from": "studio"}}', headers=plain)
    assert r.status_code == 200, r.text
    tid = r.json()["thread_id"]
    assert r.json()["metadata"]["from"] == "studio"
    r = await api.post(
        f"/threads/{tid}/runs/wait",
        content=b'{"assistant_id": "trivial", "input": {"x": 5}}',
        headers=plain,
    )
    assert r.status_code == 200 and r.json() == {"x": 5}
    bad = await api.post("/threads", content=b"{not json", headers=plain)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_request"


async def test_copy_a_checkpoint_then_rerun_from_it(sdk: LangGraphClient) -> None:
    """Studio's "re-run from here": POST /threads/{id}/state with as_node="__copy__"."""
    tid = (await sdk.threads.create())["thread_id"]
    out = await sdk.runs.wait(tid, "hitl", input={"x": 1})
    assert out["__interrupt__"][0]["value"]["x"] == 2
    history = await sdk.threads.get_history(tid)
    older = history[1]  # after the input, before `prepare`
    assert older["next"] == ["prepare"]

    copied = await sdk.threads.update_state(
        tid, None, as_node="__copy__", checkpoint_id=older["checkpoint"]["checkpoint_id"]
    )
    new_id = copied["checkpoint"]["checkpoint_id"]
    assert new_id not in {h["checkpoint"]["checkpoint_id"] for h in history}
    state = await sdk.threads.get_state(tid)
    assert state["checkpoint"]["checkpoint_id"] == new_id
    assert (state["values"], state["next"]) == (older["values"], ["prepare"])
    assert state["metadata"]["source"] == "fork"

    again = await sdk.runs.wait(tid, "hitl", input=None)  # runs on from the copy
    assert again["__interrupt__"][0]["value"] == {"question": "approve?", "x": 2}
    assert again["log"] == ["prepare"]
    with pytest.raises(UnprocessableEntityError, match="__copy__"):
        await sdk.threads.update_state(tid, None, as_node="__nope__")


# -- variants of the fixture: what the disable_* switches take away --------------------------


@pytest.fixture
def variant(tmp_path: Path) -> Iterator[Any]:
    """Start the fixture project with some settings changed (as DOCKYARD_* would)."""
    servers: list[LiveServer] = []

    def start(**overrides: Any) -> LiveServer:
        servers.append(LiveServer(tmp_path / str(len(servers)), PLATFORM, **overrides).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


async def test_disabled_families_answer_404_and_leave_the_docs(variant: Any) -> None:
    off = {f"disable_{f}": True for f in ("assistants", "threads", "runs")}
    server = variant(http={"app": None, "mount_prefix": None, "disable_store": False, **off})
    async with httpx.AsyncClient(base_url=server.url) as h:
        for method, path in [
            ("POST", "/assistants/search"),
            ("GET", "/assistants/trivial"),
            ("POST", "/threads"),
            ("GET", "/threads/t1/state"),
            ("POST", "/runs/wait"),
            ("POST", "/threads/t1/runs"),
            ("POST", "/runs/crons"),
        ]:
            r = await h.request(method, path, json={})
            assert (r.status_code, r.json()["code"]) == (404, "not_found"), path
        paths = (await h.get("/openapi.json")).json()["paths"]
        assert not [p for p in paths if p.startswith(("/assistants", "/threads", "/runs"))]
        assert "/store/items" in paths and "/ok" in paths
        assert (await h.get("/info")).json()["flags"] == {
            "assistants": False,
            "crons": False,
            "store": True,
        }
        put = {"namespace": ["n"], "key": "k", "value": {"v": 1}}
        assert (await h.put("/store/items", json=put)).status_code == 204


async def test_disabled_meta_and_webhooks(variant: Any) -> None:
    server = variant(
        http={"app": None, "mount_prefix": None, "disable_meta": True, "disable_webhooks": True}
    )
    async with httpx.AsyncClient(base_url=server.url) as h:
        for path in ("/docs", "/redoc", "/openapi.json", "/info"):
            assert (await h.get(path)).status_code == 404, path
        assert (await h.get("/ok")).json() == {"ok": True}
    client = get_client(url=server.url)
    tid = (await client.threads.create())["thread_id"]
    # The run runs; its webhook is neither checked against webhooks.url nor sent.
    out = await client.runs.wait(tid, "trivial", input={"x": 2}, webhook="http://x.invalid/h")
    assert out == {"x": 2}
    assert (await client.runs.list(tid))[0]["webhook"] is None
    observers = server.app.state.runtime.runs.ctx.observers
    assert not any(isinstance(o, WebhookDispatcher) for o in observers)
    await client.aclose()


async def test_webhook_headers_reach_an_absolute_url_and_loopback_can_be_refused(
    variant: Any,
) -> None:
    from tests.api.test_webhooks import Receiver

    receiver = Receiver()
    receiver.thread.start()
    try:
        policy = {
            "require_https": False,
            "allowed_domains": ["127.0.0.1"],
            "allowed_ports": [receiver.server.server_address[1]],
            "disable_loopback": True,
        }
        server = variant(webhooks={**TEST_WEBHOOKS, "url": policy})
        client = get_client(url=server.url + "/api")
        tid = (await client.threads.create())["thread_id"]
        url = receiver.url("hook")
        await client.runs.wait(tid, "trivial", input={"x": 4}, webhook=url)
        (sent,) = await receiver.arrived(url)
        assert sent.headers["Authorization"] == "Bearer token-from-the-project-env"
        assert sent.headers["X-Source"] == "dockyard-fixture"
        assert sent.signed and sent.json()["values"] == {"x": 4}
        with pytest.raises(UnprocessableEntityError, match="disable_loopback"):
            await client.runs.create(tid, "trivial", input={}, webhook="/hooks/run-done")
        await client.aclose()
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


async def test_a_plain_starlette_app_and_what_is_not_an_app(variant: Any, tmp_path: Path) -> None:
    app_file = tmp_path / "plain.py"
    app_file.write_text(
        "from starlette.applications import Starlette\n"
        "from starlette.responses import PlainTextResponse\n"
        "from starlette.routing import Route\n\n"
        "async def hi(request):\n"
        "    return PlainTextResponse('hi')\n\n"
        "app = Starlette(routes=[Route('/hi', hi)])\n"
        "not_an_app = object()\n",
        encoding="utf-8",
    )
    server = variant(http={"app": f"{app_file}:app", "mount_prefix": None})
    async with httpx.AsyncClient(base_url=server.url) as h:
        assert (await h.get("/hi")).text == "hi"
        assert (await h.post("/threads", json={})).status_code == 200
        assert "/hi" not in (await h.get("/openapi.json")).json()["paths"]  # not FastAPI
    with pytest.raises(ConfigError, match="expected a Starlette or FastAPI app, got object"):
        variant(http={"app": f"{app_file}:not_an_app"})
