"""The sample agent on real provider SDKs (Anthropic, OpenAI) against dockyard's mock servers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_client

from dockyard.testing import MockAnthropicServer, MockOpenAIServer
from tests.conftest import LiveServer

AGENT = """
from dockyard.agents.support import make_graph
from dockyard.providers import load_chat_model

graph = make_graph(
    model=load_chat_model({spec!r}, base_url={base_url!r}, api_key="test-key", max_retries=0)
)
"""


@pytest.mark.parametrize(
    ("server_cls", "spec"),
    [
        (MockAnthropicServer, "anthropic:claude-sonnet-4-6"),
        (MockOpenAIServer, "openai:gpt-4o-mini"),
    ],
)
async def test_support_agent_on_provider_sdk(tmp_path: Path, server_cls: Any, spec: str) -> None:
    with server_cls() as mock:
        mock.enqueue_tool_call("lookup_order", {"order_id": "A1001"})
        mock.enqueue_text("Order A1001 has shipped.")
        (tmp_path / "agent.py").write_text(AGENT.format(spec=spec, base_url=mock.base_url))
        (tmp_path / "dockyard.yaml").write_text("graphs:\n  support: ./agent.py:graph\n")
        server = LiveServer(tmp_path / "data", config=tmp_path / "dockyard.yaml").start()
        try:
            client = get_client(url=server.url)
            out = await client.runs.wait(
                None,
                "support",
                input={"messages": [{"role": "user", "content": "where is order A1001?"}]},
            )
            await client.aclose()
        finally:
            server.stop()
        messages = out["messages"]
        assert messages[-1]["content"] == "Order A1001 has shipped."
        tool_result = next(m for m in messages if m["type"] == "tool")
        assert "A1001" in tool_result["content"] and tool_result["name"] == "lookup_order"
        model_calls = [r for r in mock.requests if r.path.endswith(("/messages", "/completions"))]
        assert len(model_calls) == 2
        assert model_calls[0].model == spec.split(":", 1)[1]
        assert model_calls[0].api_key == "test-key"
