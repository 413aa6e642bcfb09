"""Requests per minute through live servers, as clients see them: langgraph-sdk, httpx and
the OpenAI SDK get 429 ``rate_limited`` with ``Retry-After`` and ``X-RateLimit-*`` after
the limit, admitted answers carry the headers, probes and docs stay open, and two API
servers sharing Redis hold the limit in total."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import RateLimitError

from tests.conftest import LiveServer, make_key
from tests.redis_server import REDIS_URL, fresh_prefix

LIMIT = 3  # one request every 20 s: the tests finish long before a refill
POLICY = {"rate_limit": {"requests_per_minute": LIMIT}}
OPEN = ["/ok", "/health", "/ready", "/docs", "/openapi.json"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(
        tmp_path_factory.mktemp("rate-limit"), policies=POLICY, auth={"required": True}
    ).start()
    yield live
    live.stop()


def assert_refused(r: httpx.Response, limit: int = LIMIT) -> None:
    assert r.status_code == 429, r.text
    body = r.json()
    assert body["code"] == "rate_limited"
    assert f"{limit} requests per minute for this API key" in body["detail"]
    # A third of a minute per request, less the time the requests before it took.
    assert 0 < int(r.headers["retry-after"]) <= 60 // limit
    assert r.headers["x-ratelimit-limit"] == str(limit)
    assert r.headers["x-ratelimit-remaining"] == "0"
    assert int(r.headers["x-ratelimit-reset"]) > time.time()


async def test_httpx_gets_429_after_the_limit_and_probes_stay_open(server: LiveServer) -> None:
    key = make_key(server)
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": key}) as h:
        for left in reversed(range(LIMIT)):
            r = await h.post("/assistants/search", json={})
            assert r.status_code == 200, r.text
            assert r.headers["x-ratelimit-limit"] == str(LIMIT)
            assert r.headers["x-ratelimit-remaining"] == str(left)
            assert int(r.headers["x-ratelimit-reset"]) >= int(time.time())
        assert_refused(await h.post("/assistants/search", json={}))
        assert_refused(await h.get(f"/threads/{uuid.uuid4()}"))  # every route, before a 404
        for path in OPEN:
            r = await h.get(path)
            assert r.status_code == 200, (path, r.text)
            assert "x-ratelimit-limit" not in r.headers
        # Another key has its own bucket.
        r = await h.post("/assistants/search", json={}, headers={"x-api-key": make_key(server)})
        assert r.status_code == 200 and r.headers["x-ratelimit-remaining"] == str(LIMIT - 1)


async def test_langgraph_sdk_gets_rate_limit_error(server: LiveServer) -> None:
    client = get_client(url=server.url, api_key=make_key(server))
    try:
        for _ in range(LIMIT):
            await client.assistants.search()
        with pytest.raises(RateLimitError) as err:
            await client.threads.create()
        assert_refused(err.value.response)
    finally:
        await client.aclose()


async def test_openai_sdk_gets_rate_limit_error(server: LiveServer) -> None:
    key = make_key(server)  # sent as "Authorization: Bearer": the same bucket as x-api-key
    oai = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)
    try:
        raw = await oai.models.with_raw_response.list()
        assert raw.headers["x-ratelimit-remaining"] == str(LIMIT - 1)
        async with httpx.AsyncClient(base_url=server.url) as h:
            for _ in range(LIMIT - 1):
                r = await h.get("/v1/models", headers={"x-api-key": key})
                assert r.status_code == 200
        with pytest.raises(openai.RateLimitError) as err:
            await oai.models.list()
        e = err.value
        assert (e.code, e.type) == ("rate_limit_exceeded", "requests")
        assert 0 < int(e.response.headers["retry-after"]) <= 60 // LIMIT
        assert e.response.headers["x-ratelimit-remaining"] == "0"
        # Nothing ran: the SDK may wait for Retry-After and ask again, as against OpenAI.
        assert "x-should-retry" not in e.response.headers
    finally:
        await oai.close()


async def test_two_servers_sharing_redis_hold_the_limit_in_total(tmp_path: Path) -> None:
    with fresh_prefix() as prefix:
        servers = [
            # Each its own SQLite file: only Redis is shared.
            LiveServer(
                tmp_path / name,
                policies=POLICY,
                redis_url=REDIS_URL,
                redis_prefix=prefix,
                auth={"required": True},
            ).start()
            for name in ("a", "b")
        ]
        try:
            key = make_key(*servers)
            statuses = []
            async with httpx.AsyncClient(headers={"x-api-key": key}) as h:
                for i in range(4 * LIMIT):
                    r = await h.post(f"{servers[i % 2].url}/assistants/search", json={})
                    statuses.append(r.status_code)
                    if r.status_code == 429:
                        assert_refused(r)
            assert statuses == [200] * LIMIT + [429] * 3 * LIMIT
        finally:
            for live in servers:
                live.stop()
