"""The research team on real provider SDKs (Anthropic, OpenAI, against dockyard's mock servers),
with web and arXiv search switched on (a Tavily key, a reachable stand-in): the same
graph as offline, every role on chat_model("default")."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_client

from dockyard.testing import MockAnthropicServer, MockOpenAIServer
from dockyard.testing.mock_providers import MockReply, MockToolCall
from tests.agents.search_mock import SearchMock
from tests.conftest import LiveServer

DOCS = Path(__file__).resolve().parents[2] / "examples" / "research" / "docs"

AGENT = """
from dockyard.agents.research import make_graph
from dockyard.providers.search import ArxivSearch, TavilySearch

graph = make_graph(
    {docs!r},
    web=TavilySearch(base_url={tavily!r}),
    arxiv=ArxivSearch(base_url={arxiv!r}),
    passages=2,
)
"""

CONFIG = """
graphs:
  research: ./research_agent.py:graph
models:
  default:
    model: {spec}
    base_url: {base_url}
    api_key_file: provider.key
    max_retries: 0
"""


WRITER_PROMPT = """
name: research-writer
type: text
template: You write research reports for the QA team. Cite sources as [n].
labels: [production]
"""


def _script(mock: MockAnthropicServer | MockOpenAIServer) -> None:
    mock.enqueue(
        MockReply(
            "Plan: research step limits, then write.",
            tool_calls=(MockToolCall("transfer_to_researcher", {"task": "Find step limits"}),),
        ),
        MockReply(
            tool_calls=(
                MockToolCall("search_documents", {"query": "recursion limit step"}),
                MockToolCall("web_search", {"query": "agent step limits"}),
                MockToolCall("arxiv_search", {"query": "agent loops"}),
            )
        ),
        MockReply("Notes: a recursion limit stops loops [doc:token-budgets]."),
        MockReply(tool_calls=(MockToolCall("transfer_to_writer", {"task": "Write it up"}),)),
        MockReply("Runs stop at a step limit [1]. Practitioners cap steps [3]. Papers [4]. [9]"),
    )


def _tools(body: dict[str, Any]) -> list[str]:
    # Anthropic: {"name": ...}; OpenAI: {"type": "function", "function": {"name": ...}}
    return sorted(t.get("name") or t["function"]["name"] for t in body.get("tools") or [])


@pytest.mark.parametrize(
    ("server_cls", "spec"),
    [
        (MockAnthropicServer, "anthropic:claude-sonnet-4-6"),
        (MockOpenAIServer, "openai:gpt-4o-mini"),
    ],
)
async def test_the_team_on_a_provider_with_web_and_arxiv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server_cls: Any, spec: str
) -> None:
    monkeypatch.setenv("TAVILY_API_KEY", "tvly-test")
    with server_cls() as mock, SearchMock() as search:
        _script(mock)
        (tmp_path / "research_agent.py").write_text(
            AGENT.format(docs=str(DOCS), tavily=search.tavily_url, arxiv=search.arxiv_url)
        )
        (tmp_path / "provider.key").write_text("sk-test\n")
        # The project's own writer prompt; the other two roles keep the built-in texts.
        (tmp_path / "prompts").mkdir()
        (tmp_path / "prompts" / "research-writer.yaml").write_text(WRITER_PROMPT)
        (tmp_path / "dockyard.yaml").write_text(CONFIG.format(spec=spec, base_url=mock.base_url))
        server = LiveServer(tmp_path / "data", config=tmp_path / "dockyard.yaml").start()
        try:
            client = get_client(url=server.url, timeout=30)
            thread_id = (await client.threads.create())["thread_id"]
            namespaces = {
                part.event.partition("|")[2].split(":")[0]
                async for part in client.runs.stream(
                    thread_id,
                    "research",
                    input={"messages": [{"role": "user", "content": "How do runs stop?"}]},
                    stream_mode="updates",
                    stream_subgraphs=True,
                )
            }
            state = (await client.threads.get_state(thread_id))["values"]
            await client.aclose()
        finally:
            server.stop()
            sys.modules.pop("research_agent", None)

    assert {"supervisor", "researcher", "writer"} <= namespaces
    sources = state["sources"]
    assert [s["kind"] for s in sources] == ["document", "document", "web", "arxiv", "arxiv"]
    report = state["report"]
    assert [c["ref"] for c in report["citations"]] == [
        "token-budgets.md",
        "https://example.com/runaway-agents",
        "http://arxiv.org/abs/2401.00001v1",
    ]
    assert report["unknown_citations"] == [9]
    assert report["uncited"] == [sources[1]["ref"], "http://arxiv.org/abs/2401.00002v2"]

    calls = [r for r in mock.requests if r.path.endswith(("/messages", "/chat/completions"))]
    assert len(calls) == 5 and mock.pending_replies == 0
    assert [r.model for r in calls] == [spec.split(":", 1)[1]] * 5
    assert [r.api_key for r in calls] == ["sk-test"] * 5
    tools = [_tools(r.body) for r in calls]
    assert tools[0] == tools[3] == ["transfer_to_researcher", "transfer_to_writer"]
    assert tools[1] == ["arxiv_search", "read_document", "search_documents", "web_search"]
    assert tools[4] == []
    assert "supervisor of a research team" in str(calls[0].body)
    assert "You write research reports for the QA team." in str(calls[4].body)
    assert "You are the writer of a research team" not in str(calls[4].body)
    # The writer got the numbered sources, web and arXiv among them.
    brief = str(calls[4].body["messages"])
    assert "[3] Runaway agents and how to stop them (https://example.com/runaway-agents)" in brief
    assert "[4] Bounding Agent Loops (http://arxiv.org/abs/2401.00001v1)" in brief
    assert [r.get("auth") for r in search.requests if "auth" in r] == ["Bearer tvly-test"]
