"""POST /chat: one thread per (user_id, session_id), through httpx against a live server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import FIXTURE_PROJECT, LiveServer


def session() -> dict[str, str]:
    return {"user_id": f"u-{uuid.uuid4().hex[:8]}", "session_id": f"s-{uuid.uuid4().hex[:8]}"}


async def chat(http: httpx.AsyncClient, body: dict[str, Any], status: int = 200) -> Any:
    r = await http.post("/chat", json=body)
    assert r.status_code == status, r.text
    return r.json()


async def test_same_session_keeps_one_thread(http: httpx.AsyncClient) -> None:
    who = session()
    first = await chat(http, {**who, "message": "hi", "assistant_id": "chat"})
    second = await chat(http, {**who, "message": "again", "assistant_id": "chat"})
    assert first["reply"] == second["reply"] == "hello there friend"
    assert first["thread_id"] == second["thread_id"]
    assert first["run_id"] != second["run_id"]
    assert "interrupt" not in first

    thread_id = first["thread_id"]
    thread = (await http.get(f"/threads/{thread_id}")).json()
    assert thread["metadata"]["user_id"] == who["user_id"]
    assert thread["metadata"]["session_id"] == who["session_id"]
    state = (await http.get(f"/threads/{thread_id}/state")).json()
    assert [(m["type"], m["content"]) for m in state["values"]["messages"]] == [
        ("human", "hi"),
        ("ai", "hello there friend"),
        ("human", "again"),
        ("ai", "hello there friend"),
    ]


async def test_sessions_and_users_get_their_own_threads(http: httpx.AsyncClient) -> None:
    who = session()
    base = {"message": "hi", "assistant_id": "chat"}
    a = await chat(http, {**who, **base})
    b = await chat(http, {**who, "session_id": who["session_id"] + "-2", **base})
    c = await chat(http, {**who, "user_id": who["user_id"] + "-2", **base})
    assert len({a["thread_id"], b["thread_id"], c["thread_id"]}) == 3
    # Each thread holds only its own conversation.
    state = (await http.get(f"/threads/{b['thread_id']}/state")).json()
    assert len(state["values"]["messages"]) == 2


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"user_id": "u", "session_id": "s", "assistant_id": "chat"}, "message"),
        ({"user_id": "u", "message": "hi", "assistant_id": "chat"}, "session_id"),
        ({"user_id": "", "session_id": "s", "message": "hi", "assistant_id": "chat"}, "user_id"),
        (
            {"user_id": "u", "session_id": "s", "message": "hi", "assistant_id": "chat", "x": 1},
            "x",
        ),
    ],
)
async def test_bad_body(http: httpx.AsyncClient, body: dict[str, Any], param: str) -> None:
    err = await chat(http, body, status=422)
    assert err["code"] == "invalid_request"
    assert err["param"] == param
    assert param in err["detail"]


async def test_assistant_required_when_several_graphs(http: httpx.AsyncClient) -> None:
    err = await chat(http, {**session(), "message": "hi"}, status=422)
    assert err["code"] == "assistant_required"
    assert err["param"] == "assistant_id"
    assert "chat" in err["detail"]


async def test_unknown_assistant(http: httpx.AsyncClient) -> None:
    err = await chat(http, {**session(), "message": "hi", "assistant_id": "nope"}, status=404)
    assert err["code"] == "assistant_not_found"


async def test_session_stays_with_its_graph(http: httpx.AsyncClient) -> None:
    who = session()
    await chat(http, {**who, "message": "hi", "assistant_id": "chat"})
    err = await chat(http, {**who, "message": "hi", "assistant_id": "weather_agent"}, status=409)
    assert err["code"] == "thread_graph_mismatch"


async def test_interrupt_and_resume(http: httpx.AsyncClient) -> None:
    who = session()
    first = await chat(http, {**who, "message": "mail bob", "assistant_id": "chat_approval"})
    assert first["reply"] == ""
    assert first["interrupt"]["value"] == {"question": "send the email?"}
    assert first["interrupt"]["id"]
    second = await chat(http, {**who, "message": "yes", "assistant_id": "chat_approval"})
    assert second["reply"] == "approved: yes"
    assert "interrupt" not in second
    assert second["thread_id"] == first["thread_id"]


async def test_failing_agent(http: httpx.AsyncClient) -> None:
    err = await chat(http, {**session(), "message": "hi", "assistant_id": "failing"}, status=502)
    assert err["code"] == "agent_failed"
    assert "the tool exploded" in err["detail"]
    assert err["run_id"] and err["thread_id"]


# -- a project with a single graph: assistant_id may be left out ------------------------


@pytest.fixture(scope="module")
def solo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root: Path = tmp_path_factory.mktemp("solo")
    config = root / "dockyard.yaml"
    config.write_text(f"graphs:\n  solo: {FIXTURE_PROJECT / 'graphs.py'}:chat\n")
    server = LiveServer(root / "data", config=config).start()
    yield server
    server.stop()


@pytest.fixture
async def solo(solo_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=solo_server.url, timeout=30) as h:
        yield h


async def test_single_graph_is_the_default(solo: httpx.AsyncClient) -> None:
    out = await chat(solo, {**session(), "message": "hi"})
    assert out["reply"] == "hello there friend"
    thread = (await solo.get(f"/threads/{out['thread_id']}")).json()
    assert thread["metadata"]["graph_id"] == "solo"
