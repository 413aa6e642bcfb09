"""The memory chat on the production layout: an API-only server and a worker process over
PostgreSQL (memories in dockyard's PostgreSQL store: pgvector when the database has it,
else the exact-scan fallback) and Redis. With CI=true a missing server fails the test."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from tests.cluster import cluster

pytestmark = pytest.mark.timeout(300)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "memory-chat"


def chat(url: str, user_id: str, session_id: str, message: str) -> dict[str, Any]:
    body = {"user_id": user_id, "session_id": session_id, "message": message}
    r = httpx.post(f"{url}/chat", json=body, timeout=60)
    assert r.status_code == 200, r.text
    reply: dict[str, Any] = r.json()
    return reply


async def test_memory_across_sessions_with_a_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "DOCKYARD_MODELS__DEFAULT"):
        monkeypatch.delenv(name, raising=False)  # the worker picks the offline model
    mina, joe = f"mina-{uuid.uuid4().hex[:6]}", f"joe-{uuid.uuid4().hex[:6]}"
    with cluster(tmp_path, apis=1, workers=1, config=EXAMPLE / "dockyard.yaml") as c:
        url = c.apis[0].url
        first = chat(url, mina, "s1", "Hi, my name is Mina Park and I live in Busan.")
        assert first["reply"].startswith("Thanks, I will remember that your name is Mina Park")

        second = chat(url, mina, "s2", "What is my name?")
        assert second["thread_id"] != first["thread_id"]
        assert second["reply"].endswith("your name is Mina Park.")
        assert chat(url, joe, "s1", "What is my name?")["reply"].startswith(
            "I don't have anything about you on record yet"
        )

        client = get_client(url=url)
        try:
            found = await client.store.search_items(["memories", mina], query="where do I live")
            assert found["items"][0]["value"]["text"] == "I live in Busan."
            assert found["items"][0]["score"] is not None  # semantic search on PostgreSQL
            assert (await client.store.search_items(["memories", joe]))["items"] == []
        finally:
            await client.aclose()
