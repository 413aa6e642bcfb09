"""Resilience as a user sees it: a graph on ``chat_model("default")`` served by dockyard,
driven with langgraph-sdk, while the mock OpenAI server answers 429 to everything.

The 429 storm is retried (Retry-After honoured), then the Anthropic fallback answers;
the primary's breaker opens and the fallback then answers at once, the primary hearing
nothing more. A model with no fallback refuses with 503 ``provider_unavailable``. Both
layouts: the embedded server, and API + 2 workers over PostgreSQL with the breakers in
Redis (whichever worker runs a call sees the breaker the other opened).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from langgraph_sdk import get_client

from dockyard.testing import MockAnthropicServer, MockOpenAIServer
from tests.cluster import cluster
from tests.conftest import LiveServer

pytestmark = pytest.mark.timeout(300)

AGENT = """
from typing import Any

from langgraph.graph import START, MessagesState, StateGraph

from dockyard import chat_model


def build(name: str) -> Any:
    model = chat_model(name)

    async def answer(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("answer", answer)
    graph.add_edge(START, "answer")
    return graph.compile()


graph = build("default")
solo = build("solo")
"""

RETRY = {"max_attempts": 3, "backoff_min_seconds": 0.01, "backoff_max_seconds": 0.05}


def write_project(root: Path, openai_url: str, anthropic_url: str) -> Path:
    (root / "agent.py").write_text(AGENT)
    (root / "anthropic.key").write_text("test-key")
    config = {
        "graphs": {"answer": "./agent.py:graph", "solo_agent": "./agent.py:solo"},
        "models": {
            "default": {
                "model": "openai:gpt-primary",
                "base_url": openai_url,
                "fallbacks": ["backup"],
                "retry": RETRY,
                "breaker": {"failures": 5, "cooldown_seconds": 600},
            },
            "backup": {
                "model": "anthropic:claude-backup",
                "base_url": anthropic_url,
                "api_key_file": "anthropic.key",
            },
            "solo": {"model": "openai:gpt-solo", "base_url": openai_url, "retry": RETRY},
        },
    }
    path = root / "dockyard.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def posts(server: MockOpenAIServer | MockAnthropicServer) -> int:
    return len([r for r in server.requests if r.method == "POST"])


async def check_storm(url: str, primary: MockOpenAIServer, backup: MockAnthropicServer) -> None:
    client = get_client(url=url, timeout=60)
    try:
        # No fallback: the retries are spent, then the run is refused with 503.
        primary.fail_next(503, times=3)
        with pytest.raises(httpx.HTTPStatusError) as refused:
            await client.runs.wait(None, "solo_agent", input=user("anyone there?"))
        assert refused.value.response.status_code == 503
        body = refused.value.response.json()
        assert body["code"] == "provider_unavailable" and "solo: HTTP 503" in body["detail"]
        assert posts(primary) == 3
        primary.reset()

        primary.fail_next(429, times=1000, retry_after=0.01)
        out = await client.runs.wait(None, "answer", input=user("where is my order?"))
        assert isinstance(out, dict)
        reply = out["messages"][-1]
        assert reply["content"] == "where is my order?"  # the backup echoes
        assert reply["response_metadata"]["model_name"] == "claude-backup"
        assert (posts(primary), posts(backup)) == (3, 1)  # retried, then fell back

        await client.runs.wait(None, "answer", input=user("again"))
        assert (posts(primary), posts(backup)) == (5, 2)  # the fifth failure opened it

        thread = await client.threads.create()
        for n in range(4):  # open: the backup answers at once
            parts = [
                part
                async for part in client.runs.stream(
                    thread["thread_id"], "answer", input=user(f"open {n}"), stream_mode="messages"
                )
            ]
            tokens = [p.data[0]["content"] for p in parts if p.event == "messages/partial"]
            assert tokens and tokens[-1] == f"open {n}"
        assert (posts(primary), posts(backup)) == (5, 6)
    finally:
        await client.aclose()


async def test_embedded(
    tmp_path: Path, mock_openai: MockOpenAIServer, mock_anthropic: MockAnthropicServer
) -> None:
    project = write_project(tmp_path, mock_openai.base_url, mock_anthropic.base_url)
    server = LiveServer(tmp_path / "data", config=project).start()
    try:
        await check_storm(server.url, mock_openai, mock_anthropic)
    finally:
        server.stop()


async def test_api_and_two_workers_share_the_breaker_in_redis(
    tmp_path: Path, mock_openai: MockOpenAIServer, mock_anthropic: MockAnthropicServer
) -> None:
    project = write_project(tmp_path, mock_openai.base_url, mock_anthropic.base_url)
    with cluster(tmp_path, apis=1, workers=2, config=project) as c:
        await check_storm(c.apis[0].url, mock_openai, mock_anthropic)
