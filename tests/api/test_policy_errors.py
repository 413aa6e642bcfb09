"""PolicyError raised inside a graph (a node, a model call, a tool, wrapped by a library)
reaches every client with its status and code, on each embedded layout; raised by a
route's dependency or a middleware, it answers the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import openai
import pytest
from fastapi import FastAPI
from langgraph_sdk.client import LangGraphClient

from dockyard.api import create_app
from dockyard.api.app import CatchAll
from dockyard.api.deps import get_process
from dockyard.errors import RateLimitedError
from dockyard.settings import load_settings
from tests.conftest import FIXTURE_PROJECT
from tests.policy_checks import (
    EXPECTED,
    GRAPH,
    check_chat_refusal,
    check_openai_refusal,
    check_run_refusal,
    graph_input,
)


@pytest.fixture
async def oai(server_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=f"{server_url}/v1", api_key="unused", max_retries=0)
    yield client
    await client.close()


def _retry_after(name: str) -> float | None:
    # Any refusal may say when to come back; rate limits always do here.
    return {"RateLimitedError": 7, "QuotaExceededError": 3600, "ProviderUnavailableError": 2.5}.get(
        name
    )


@pytest.mark.parametrize("name", list(EXPECTED))
async def test_refusal_from_a_model_call(
    client: LangGraphClient,
    http: httpx.AsyncClient,
    oai: openai.AsyncOpenAI,
    name: str,
) -> None:
    retry_after = _retry_after(name)
    await check_run_refusal(client, http, name, "model", retry_after)
    await check_openai_refusal(oai, name, retry_after)
    await check_chat_refusal(http, name, retry_after)


@pytest.mark.parametrize("where", ["node", "tool", "wrapped"])
async def test_refusal_from_anywhere_in_the_graph(
    client: LangGraphClient, http: httpx.AsyncClient, where: str
) -> None:
    await check_run_refusal(client, http, "RateLimitedError", where, 0.2)
    await check_run_refusal(client, http, "GuardrailBlockedError", where, None)


async def test_other_failures_keep_langgraphs_contract(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    """A graph's own failure is not a refusal: runs.wait answers 200 with __error__."""
    r = await http.post("/runs/wait", json={"assistant_id": "failing", "input": {}})
    assert r.status_code == 200
    assert r.json() == {"__error__": {"error": "ValueError", "message": "the tool exploded"}}
    # A class of dockyard.errors that is not a policy's: recorded with its code, no status.
    inp = graph_input("UnavailableError", "node", None)
    r = await http.post("/runs/wait", json={"assistant_id": GRAPH, "input": inp})
    assert r.status_code == 200
    assert r.json() == {
        "__error__": {
            "error": "UnavailableError",
            "message": "refused by the test policy: UnavailableError",
            "code": "unavailable",
        }
    }
    ok = await client.runs.wait(
        None, GRAPH, input={"messages": [{"role": "user", "content": "hi"}]}
    )
    assert ok["messages"][-1]["content"] == "not refused"


# -- raised outside a run: a route's dependency, a middleware ------------------------------


@pytest.fixture
async def refusing_app(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """dockyard's app whose every route depends on a policy that refuses (in place of the
    runtime dependency); not started: nothing past the dependency runs."""
    app = create_app(
        load_settings(
            FIXTURE_PROJECT / "dockyard.yaml", data_dir=tmp_path, auth={"required": False}
        )
    )

    async def policy() -> None:
        raise RateLimitedError("too many requests from this key; retry in 2 s", retry_after=1.5)

    app.dependency_overrides[get_process] = policy
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://dockyard") as h:
        yield app, h


async def test_refusal_from_a_route_dependency(
    refusing_app: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, h = refusing_app
    for r in (
        await h.post("/threads", json={}),
        await h.post("/runs/wait", json={"assistant_id": "trivial"}),
        await h.post("/chat", json={"user_id": "u", "session_id": "s", "message": "hi"}),
    ):
        assert r.status_code == 429, r.text
        assert r.json() == {
            "detail": "too many requests from this key; retry in 2 s",
            "code": "rate_limited",
            "retry_after": 1.5,
        }
        assert r.headers["retry-after"] == "2"

    # The OpenAI SDK sees its RateLimitError; nothing ran, so it may retry after
    # Retry-After (no x-should-retry: false), as it does against OpenAI.
    oai = openai.AsyncOpenAI(
        base_url="http://dockyard/v1", api_key="unused", max_retries=0, http_client=h
    )
    with pytest.raises(openai.RateLimitError) as err:
        await oai.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hi"}]
        )
    assert err.value.status_code == 429
    assert (err.value.code, err.value.type) == ("rate_limit_exceeded", "requests")
    assert err.value.response.headers["retry-after"] == "2"
    assert "x-should-retry" not in err.value.response.headers
    assert "x-run-id" not in err.value.response.headers


async def test_refusal_from_a_middleware() -> None:
    """A policy written as ASGI middleware may raise too: CatchAll answers it."""

    async def refusing(scope: object, receive: object, send: object) -> None:
        raise RateLimitedError("slow down", retry_after=0)

    transport = httpx.ASGITransport(app=CatchAll(refusing))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://dockyard") as h:
        assert_http_refusal_plain(await h.get("/threads"), "rate_limited", 429, "0")
        r = await h.post("/v1/chat/completions", json={})
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "rate_limit_exceeded"
        assert r.headers["retry-after"] == "0"


def assert_http_refusal_plain(r: httpx.Response, code: str, status: int, retry: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["code"] == code
    assert r.headers["retry-after"] == retry
