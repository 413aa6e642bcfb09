"""The memory chat, unchanged, on the real provider SDKs: ``models.default`` points at
dockyard's mock OpenAI server (chat completions, and the store's embeddings too) or at its
mock Anthropic server (messages; the store's embeddings are the fake ones)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.providers.offline.memory import MEMORY_HEADER
from dockyard.testing import MockAnthropicServer, MockOpenAIServer
from tests.conftest import LiveServer

PROJECT = """
graphs:
  memory_chat: dockyard.agents.memory_chat:graph
models:
  default: {{model: "openai:gpt-4o-mini", base_url: {base_url!r}, max_retries: 0}}
store:
  index: {{embed: "openai:text-embedding-3-small", dims: 1536, base_url: {base_url!r}}}
"""


def chat(url: str, user_id: str, session_id: str, message: str) -> dict[str, Any]:
    body = {"user_id": user_id, "session_id": session_id, "message": message}
    r = httpx.post(f"{url}/chat", json=body, timeout=60)
    assert r.status_code == 200, r.text
    reply: dict[str, Any] = r.json()
    return reply


def chat_calls(mock: MockOpenAIServer) -> list[dict[str, Any]]:
    return [r.body for r in mock.requests if r.path.endswith("/chat/completions")]


async def test_memory_chat_on_openai(tmp_path: Path) -> None:
    mina = f"mina-{uuid.uuid4().hex[:6]}"
    with MockOpenAIServer() as mock:
        (tmp_path / "dockyard.yaml").write_text(PROJECT.format(base_url=mock.base_url))
        server = LiveServer(tmp_path / "data", config=tmp_path / "dockyard.yaml").start()
        try:
            # Turn 1: the answer, then the extraction (structured output: JSON).
            mock.enqueue_text("Nice to meet you, Mina!")
            facts = {"facts": [{"topic": "name", "text": "My name is Mina Park."}]}
            mock.enqueue_text(json.dumps(facts))
            first = chat(server.url, mina, "s1", "Hi, I'm Mina Park.")
            assert first["reply"] == "Nice to meet you, Mina!"
            extraction = chat_calls(mock)[-1]
            assert extraction["response_format"]["json_schema"]["name"] == "UserFacts"
            assert extraction["messages"][-1]["content"] == "Hi, I'm Mina Park."

            # Turn 2, another session: the memory reaches the model's system prompt.
            mock.enqueue_text("You are Mina Park.")
            mock.enqueue_text(json.dumps({"facts": []}))
            second = chat(server.url, mina, "s2", "What is my name?")
            assert second["reply"] == "You are Mina Park."
            answer_call = chat_calls(mock)[-2]
            system = answer_call["messages"][0]
            assert system["role"] == "system"
            assert f"{MEMORY_HEADER}\n- My name is Mina Park." in system["content"]
            assert [t["function"]["name"] for t in answer_call["tools"]] == [
                "lookup_order",
                "search_faq",
            ]
        finally:
            server.stop()
    embedded = [r.body for r in mock.requests if r.path.endswith("/embeddings")]
    # The fact when it was stored, and each turn's message when memories were searched.
    assert ["My name is Mina Park."] in [e["input"] for e in embedded]
    assert all(e["model"] == "text-embedding-3-small" for e in embedded)


ANTHROPIC_PROJECT = """
graphs:
  memory_chat: dockyard.agents.memory_chat:graph
models:
  default: {{model: "anthropic:claude-sonnet-4-6", base_url: {base_url!r}, max_retries: 0}}
store:
  index: {{embed: "fake:256", dims: 256}}
"""


async def test_memory_chat_on_anthropic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")  # the SDK needs one, the mock none
    mina = f"mina-{uuid.uuid4().hex[:6]}"
    with MockAnthropicServer() as mock:
        (tmp_path / "dockyard.yaml").write_text(ANTHROPIC_PROJECT.format(base_url=mock.base_url))
        server = LiveServer(tmp_path / "data", config=tmp_path / "dockyard.yaml").start()
        try:
            # Claude answers structured output through a tool call named after the schema.
            mock.enqueue_text("Nice to meet you, Mina!")
            fact = {"topic": "location", "text": "I live in Busan."}
            mock.enqueue_tool_call("UserFacts", {"facts": [fact]})
            chat(server.url, mina, "s1", "I live in Busan these days.")
            mock.enqueue_text("In Busan.")
            mock.enqueue_tool_call("UserFacts", {"facts": []})
            assert chat(server.url, mina, "s2", "Where do I live?")["reply"] == "In Busan."
        finally:
            server.stop()
    calls = [r.body for r in mock.requests if r.path.endswith("/messages")]
    assert len(calls) == 4
    assert [t["name"] for t in calls[1]["tools"]] == ["UserFacts"]
    assert f"{MEMORY_HEADER}\n- I live in Busan." in json.dumps(calls[2]["system"]).replace(
        "\\n", "\n"
    )
