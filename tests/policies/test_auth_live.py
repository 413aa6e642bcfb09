"""API keys through a live server, as clients see them: langgraph-sdk (``api_key=`` sends
``x-api-key``), the OpenAI SDK (``Authorization: Bearer``) and httpx; 401 ``unauthorized``
without a valid key, probes open, revocation and expiry, the admin routes, and the
``dockyard keys`` commands against the same database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import openai
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import APIStatusError
from typer.testing import CliRunner

from dockyard.cli.main import app as cli
from tests.conftest import LiveServer, make_key

PROJECT = Path(__file__).parent / "auth_project"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # The project's own auth block, not the test servers' open default.
    live = LiveServer(
        tmp_path_factory.mktemp("auth"),
        config=PROJECT / "dockyard.yaml",
        auth={"required": True, "cache_seconds": 0},
    ).start()
    yield live
    live.stop()


def assert_unauthorized(r: httpx.Response, says: str) -> None:
    assert r.status_code == 401, r.text
    body = r.json()
    assert body["code"] == "unauthorized" and says in body["detail"], body
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_requests_without_a_valid_key_get_401_and_probes_stay_open(
    server: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as h:
        assert_unauthorized(await h.post("/threads/search", json={}), "an API key is required")
        for bad in ({"x-api-key": "dk_not-a-key"}, {"Authorization": "Bearer sk-unused"}):
            assert_unauthorized(await h.post("/threads/search", json={}, headers=bad), "not valid")
        for path in ("/ok", "/health", "/ready", "/docs", "/openapi.json"):
            assert (await h.get(path)).status_code == 200, path
        key = make_key(server)
        for header in ({"x-api-key": key}, {"Authorization": f"Bearer {key}"}):
            assert (await h.post("/threads/search", json={}, headers=header)).status_code == 200


async def test_langgraph_sdk_with_api_key(server: LiveServer) -> None:
    anonymous = get_client(url=server.url, api_key=None)
    client = get_client(url=server.url, api_key=make_key(server))
    try:
        with pytest.raises(APIStatusError) as err:
            await anonymous.threads.create()
        assert err.value.response.status_code == 401
        thread = await client.threads.create()
        out = await client.runs.wait(thread["thread_id"], "memo", input={"text": "hi"})
        assert out["before"] is None
    finally:
        await client.aclose()
        await anonymous.aclose()


async def test_openai_sdk_with_bearer_key(server: LiveServer) -> None:
    ok = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=make_key(server))
    bad = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="sk-unused", max_retries=0)
    try:
        assert {m.id for m in (await ok.models.list()).data} >= {"memo"}
        with pytest.raises(openai.AuthenticationError) as err:
            await bad.models.list()
        assert err.value.code == "unauthorized"
    finally:
        await ok.close()
        await bad.close()


async def test_revoked_and_expired_keys_are_refused(server: LiveServer) -> None:
    admin = make_key(server, tenant="ops", scopes=["admin"])
    soon = make_key(server, expires_at=datetime.now(UTC) + timedelta(seconds=1))
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": admin}) as h:
        made = await h.post("/keys", json={"tenant": "acme", "name": "ci"})
        assert made.status_code == 201, made.text
        key, key_id = made.json()["key"], made.json()["id"]
        assert key.startswith("dk_") and made.json()["tenant"] == "acme"
        listed = (await h.get("/keys", params={"tenant": "acme"})).json()
        assert key_id in {k["id"] for k in listed}
        assert all("key" not in k and "key_hash" not in k for k in listed)
        r = await h.post("/threads/search", json={}, headers={"x-api-key": key})
        assert r.status_code == 200
        assert (await h.delete(f"/keys/{key_id}")).status_code == 204
        r = await h.post("/threads/search", json={}, headers={"x-api-key": key})
        assert_unauthorized(r, "revoked")
        assert (await h.delete("/keys/key_missing")).json()["code"] == "key_not_found"
        # A key that is not admin manages no keys.
        r = await h.get("/keys", headers={"x-api-key": make_key(server)})
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
        r = await h.post("/keys", json={"tenant": "x", "scopes": ["root"]})
        assert r.status_code == 422 and "unknown scope 'root'" in r.json()["detail"]
        r = await h.post("/keys", json={"tenant": "a.b"})
        assert r.status_code == 422 and r.json()["param"] == "tenant"
        await _wait_past(1.1)
        r = await h.post("/threads/search", json={}, headers={"x-api-key": soon})
        assert_unauthorized(r, "expired")


async def _wait_past(seconds: float) -> None:
    await asyncio.sleep(seconds)


def test_keys_cli_creates_lists_and_revokes(server: LiveServer, tmp_path: Path) -> None:
    """``dockyard keys`` in the project folder, against the server's own database."""
    env = {"DOCKYARD_DATA_DIR": str(server.settings.data_dir)}
    runner = CliRunner()
    config = str(PROJECT / "dockyard.yaml")
    made = runner.invoke(
        cli,
        [
            *("keys", "create", "-c", config, "--tenant", "globex", "--name", "bot", "--json"),
            *("--policy", "rate_limit.requests_per_minute=30", "--expires", "30d"),
        ],
        env=env,
    )
    assert made.exit_code == 0, made.output
    shown = json.loads(made.stdout)
    assert {"id", "key", "tenant"} <= shown.keys() and shown["tenant"] == "globex"
    assert shown["policies"] == {"rate_limit": {"requests_per_minute": 30}}
    with httpx.Client(base_url=server.url) as h:
        r = h.post("/threads/search", json={}, headers={"x-api-key": shown["key"]})
        assert r.status_code == 200
        listed = runner.invoke(cli, ["keys", "list", "-c", config, "--json"], env=env)
        rows = json.loads(listed.stdout)
        assert shown["id"] in {r["id"] for r in rows}
        assert shown["key"] not in listed.stdout
        revoked = runner.invoke(cli, ["keys", "revoke", shown["id"], "-c", config], env=env)
        assert revoked.exit_code == 0 and "revoked" in revoked.stdout
        r = h.post("/threads/search", json={}, headers={"x-api-key": shown["key"]})
        assert r.status_code == 401
    bad = runner.invoke(
        cli, ["keys", "create", "-c", config, "--tenant", "x", "--scopes", "root"], env=env
    )
    assert bad.exit_code == 2 and "unknown scope" in bad.output
    gone = runner.invoke(cli, ["keys", "revoke", "key_nope", "-c", config], env=env)
    assert gone.exit_code == 1
