"""The prompt registry through a live server: the API with keys, a graph reading its prompt
with ``dockyard.prompt()`` through langgraph-sdk, on SQLite and on PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from tests.conftest import LiveServer, make_key

PROJECT = Path(__file__).parents[1] / "prompts" / "project"
NAME = "ticket-summary"
TICKET = "printer on fire"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with contextlib.ExitStack() as stack:
        extra: dict[str, Any] = {}
        if request.param == "postgres":
            from tests.pg import fresh_database_sync

            extra["database_url"] = stack.enter_context(fresh_database_sync())
        live = LiveServer(
            tmp_path_factory.mktemp("prompts"),
            config=PROJECT / "dockyard.yaml",
            auth={"required": True, "cache_seconds": 0},
            **extra,
        ).start()
        stack.callback(live.stop)
        yield live


@pytest.fixture(scope="module")
def keys(server: LiveServer) -> dict[str, str]:
    return {
        "admin": make_key(server, scopes=["admin"], name="release-bot"),
        "reader": make_key(server, name="app"),
    }


@pytest.fixture
async def admin(server: LiveServer, keys: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"x-api-key": keys["admin"]}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as h:
        yield h


@pytest.fixture
async def reader(server: LiveServer, keys: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"x-api-key": keys["reader"]}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as h:
        yield h


async def run_graph(server: LiveServer, key: str, **state: Any) -> tuple[dict[str, Any], Any]:
    """The graph's final values and the stored run, through langgraph-sdk."""
    client = get_client(url=server.url, api_key=key)
    try:
        thread = await client.threads.create()
        run = await client.runs.create(thread["thread_id"], "summarize", input=state)
        values = await client.runs.join(thread["thread_id"], run["run_id"])
        stored = await client.runs.get(thread["thread_id"], run["run_id"])
    finally:
        await client.http.client.aclose()
    return values, stored  # type: ignore[return-value]


async def test_project_file_is_pushed_and_served(
    server: LiveServer, reader: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    r = await reader.get(f"/prompts/{NAME}", params={"label": "production"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["author"] == "project" and body["variables"] == ["ticket"]
    assert "production" in body["labels"]
    listed = (await reader.get("/prompts")).json()
    assert [p["name"] for p in listed] == [NAME]


async def test_push_label_rollback_reach_a_running_graph(
    server: LiveServer, admin: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    base = (await admin.get(f"/prompts/{NAME}", params={"label": "production"})).json()
    values, _ = await run_graph(server, keys["reader"], ticket=TICKET)
    assert values["text"] == f"Summarize this ticket: {TICKET}"
    assert values["used"] == f"{NAME}@{base['version']}"

    r = await admin.post(
        f"/prompts/{NAME}/versions",
        json={
            "type": "text",
            "template": "TL;DR of {{ ticket }}",
            "sample": {"ticket": "x"},
            "labels": ["production"],
            "message": "shorter",
        },
    )
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["version"] == base["version"] + 1 and new["author"] == "release-bot"
    assert sorted(new["labels"]) == ["latest", "production"]
    values, run = await run_graph(server, keys["reader"], ticket=TICKET)
    assert values["text"] == f"TL;DR of {TICKET}"
    # the run records the version it used
    assert run["usage"]["prompts"] == [
        {"name": NAME, "version": new["version"], "label": "production"}
    ]

    r = await admin.post(f"/prompts/{NAME}/labels/production/rollback")
    assert r.status_code == 200, r.text
    assert (r.json()["from_version"], r.json()["to_version"]) == (new["version"], base["version"])
    values, run = await run_graph(server, keys["reader"], ticket=TICKET)
    assert values["text"] == f"Summarize this ticket: {TICKET}"
    assert run["usage"]["prompts"][0]["version"] == base["version"]
    # `latest` still names the newest version; a version by number too
    values, _ = await run_graph(server, keys["reader"], ticket=TICKET, label="latest")
    assert values["used"] == f"{NAME}@{new['version']}"
    values, _ = await run_graph(server, keys["reader"], ticket=TICKET, version=base["version"])
    assert values["used"] == f"{NAME}@{base['version']}"

    history = (await admin.get(f"/prompts/{NAME}/history", params={"label": "production"})).json()
    assert [(m["kind"], m["to_version"], m["author"]) for m in history][-2:] == [
        ("set", new["version"], "release-bot"),
        ("rollback", base["version"], "release-bot"),
    ]
    diff = (await admin.get(f"/prompts/{NAME}/diff", params={"a": 1, "b": new["version"]})).json()
    assert "-Summarize this ticket: {{ ticket }}" in diff["diff"]
    assert "+TL;DR of {{ ticket }}" in diff["diff"]
    # put production back where the other tests expect it
    await admin.put(f"/prompts/{NAME}/labels/production", json={"version": base["version"]})


async def test_missing_and_unknown_variables_are_named(
    server: LiveServer, reader: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    r = await reader.post(f"/prompts/{NAME}/render", json={"variables": {}})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "prompt_variables" and r.json()["param"] == "ticket"
    assert "'ticket' is missing" in r.json()["detail"]
    r = await reader.post(
        f"/prompts/{NAME}/render", json={"variables": {"ticket": "a", "tone": "dry"}}
    )
    assert r.status_code == 422 and r.json()["param"] == "tone", r.text
    assert "'tone' is not declared" in r.json()["detail"]
    r = await reader.post(
        f"/prompts/{NAME}/render", json={"variables": {"ticket": "a"}, "label": "production"}
    )
    assert r.status_code == 200 and r.json()["text"] == "Summarize this ticket: a", r.text

    # in a graph: the run fails with the error naming the variable
    _, run = await run_graph(server, keys["reader"], ticket=TICKET, extra={"tone": "dry"})
    assert run["status"] == "error"
    assert "'tone' is not declared" in run["error"]["message"], run["error"]
    assert run["error"]["code"] == "prompt_variables"


async def test_a_label_needs_a_version_that_renders_its_sample(admin: httpx.AsyncClient) -> None:
    chat = {
        "type": "chat",
        "messages": [
            {"role": "system", "content": "You answer as {{ persona }}."},
            {"role": "user", "content": "{{ question }}"},
        ],
    }
    r = await admin.post("/prompts/helper/versions", json=chat)
    assert r.status_code == 201, r.text
    version = r.json()["version"]
    r = await admin.put("/prompts/helper/labels/production", json={"version": version})
    assert r.status_code == 409 and r.json()["code"] == "prompt_render_failed", r.text
    assert "persona" in r.json()["detail"]
    # labelled at push time: refused the same way, and nothing is stored
    r = await admin.post(
        "/prompts/helper/versions",
        json={**chat, "sample": {"persona": "a pirate"}, "labels": ["production"]},
    )
    assert r.status_code == 409 and r.json()["code"] == "prompt_render_failed", r.text
    assert (await admin.get("/prompts/helper")).json()["version"] == version
    r = await admin.post(
        "/prompts/helper/versions",
        json={**chat, "sample": {"persona": "a pirate", "question": "why?"}},
    )
    good = r.json()["version"]
    r = await admin.put("/prompts/helper/labels/production", json={"version": good})
    assert r.status_code == 200, r.text
    r = await admin.post(
        "/prompts/helper/render",
        json={"label": "production", "variables": {"persona": "Ann", "question": "Hi?"}},
    )
    assert r.json()["messages"] == [
        {"role": "system", "content": "You answer as Ann."},
        {"role": "user", "content": "Hi?"},
    ]
    for bad, code in (("latest", "label_reserved"), ("Not Valid", "invalid_label")):
        r = await admin.put(f"/prompts/helper/labels/{bad}", json={"version": good})
        assert r.status_code == 422 and r.json()["code"] == code, r.text
    r = await admin.post("/prompts/helper/labels/staging/rollback")
    assert r.status_code == 404 and r.json()["code"] == "prompt_not_found", r.text
    r = await admin.post("/prompts/helper/labels/production/rollback")
    assert r.status_code == 409 and r.json()["code"] == "label_conflict", r.text


async def test_writes_need_admin_and_reads_a_key(
    server: LiveServer, reader: httpx.AsyncClient
) -> None:
    r = await reader.post(f"/prompts/{NAME}/versions", json={"type": "text", "template": "x"})
    assert r.status_code == 403, r.text
    r = await reader.put(f"/prompts/{NAME}/labels/production", json={"version": 1})
    assert r.status_code == 403, r.text
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        assert (await anonymous.get("/prompts")).status_code == 401
    r = await reader.get("/prompts/nope")
    assert r.status_code == 404 and r.json()["code"] == "prompt_not_found"
    r = await reader.get(f"/prompts/{NAME}", params={"version": 99})
    assert r.status_code == 404 and r.json()["code"] == "prompt_not_found"


async def test_bad_versions_are_refused(admin: httpx.AsyncClient) -> None:
    r = await admin.post(
        "/prompts/bad/versions",
        json={"type": "text", "template": "Hi {{ who }}", "variables": ["name"]},
    )
    assert r.status_code == 422 and r.json()["code"] == "invalid_prompt", r.text
    assert "who" in r.json()["detail"]
    r = await admin.post("/prompts/bad/versions", json={"type": "text", "template": "x", "x": 1})
    assert r.status_code == 422, r.text
    r = await admin.post("/prompts/-bad/versions", json={"type": "text", "template": "x"})
    assert r.status_code == 422 and r.json()["param"] == "name", r.text
