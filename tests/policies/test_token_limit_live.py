"""Model tokens per minute through a live server: a graph's ``chat_model("default")``
calls and gateway calls count the tokens the provider reports against the caller's key
(its own limit when it has one, else ``policies.rate_limit.tokens_per_minute``); once
spent, the next call is refused with 429 ``rate_limited`` and the provider hears
nothing more; another key has its own bucket."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from langgraph_sdk import get_client

from dockyard.testing import MockOpenAIServer
from dockyard.testing.mock_providers import MockReply
from tests.conftest import LiveServer, make_key

AGENT = """
from typing import Any

from langgraph.graph import START, MessagesState, StateGraph

from dockyard import chat_model

model = chat_model("default")


async def answer(state: MessagesState) -> dict[str, Any]:
    return {"messages": [await model.ainvoke(state["messages"])]}


g = StateGraph(MessagesState)
g.add_node("answer", answer)
g.add_edge(START, "answer")
graph = g.compile()
"""


@pytest.fixture
def server(tmp_path: Path, mock_openai: MockOpenAIServer) -> Any:
    (tmp_path / "agent.py").write_text(AGENT)
    config = {
        "graphs": {"answer": "./agent.py:graph"},
        "models": {"default": {"model": "openai:gpt-4o-mini", "base_url": mock_openai.base_url}},
        "policies": {"rate_limit": {"tokens_per_minute": 1000}},
    }
    (tmp_path / "dockyard.yaml").write_text(yaml.safe_dump(config))
    live = LiveServer(
        tmp_path / "data", config=tmp_path / "dockyard.yaml", auth={"required": True}
    ).start()
    yield live
    live.stop()


def calls(mock: MockOpenAIServer) -> int:
    return len([r for r in mock.requests if r.method == "POST"])


def script(mock: MockOpenAIServer, n: int) -> None:
    for _ in range(n):
        mock.enqueue(MockReply(text="ok", input_tokens=10, output_tokens=20))  # 30 a call


async def test_runs_and_gateway_calls_spend_the_keys_tokens(
    server: LiveServer, mock_openai: MockOpenAIServer
) -> None:
    small = make_key(server, policies={"rate_limit": {"tokens_per_minute": 40}})
    script(mock_openai, 10)
    client = get_client(url=server.url, api_key=small)
    other = get_client(url=server.url, api_key=make_key(server))
    msg = {"messages": [{"role": "user", "content": "hi"}]}
    try:
        await client.runs.wait(None, "answer", input=msg)  # 30 of 40 spent
        await client.runs.wait(None, "answer", input=msg)  # its estimate fit: 60 spent
        with pytest.raises(httpx.HTTPStatusError) as refused:
            await client.runs.wait(None, "answer", input=msg)
        assert refused.value.response.status_code == 429
        body = refused.value.response.json()
        assert body["code"] == "rate_limited" and "tokens per minute" in body["detail"]
        assert calls(mock_openai) == 2  # the refused call never reached the provider
        # Another key has its own bucket (the default limit).
        out = await other.runs.wait(None, "answer", input=msg)
        assert isinstance(out, dict) and out["messages"][-1]["content"] == "ok"
        # The gateway counts against the same bucket.
        oai = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=small, max_retries=0)
        try:
            with pytest.raises(openai.RateLimitError) as err:
                await oai.chat.completions.create(
                    model="default", messages=[{"role": "user", "content": "hi"}]
                )
            assert err.value.code == "rate_limit_exceeded"
        finally:
            await oai.close()
        assert calls(mock_openai) == 3
    finally:
        await client.aclose()
        await other.aclose()
