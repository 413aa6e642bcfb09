"""The research team, served from examples/research, driven through langgraph-sdk offline:
the supervisor's handoffs, the researcher's searches and the writer's cited report, as
subgraph events; the step and call limits that stop a run."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from tests.conftest import LiveServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "research"
DOCS = {p.name for p in (EXAMPLE / "docs").iterdir()}
PROVIDER_ENV = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "DOCKYARD_MODELS__DEFAULT", "TAVILY_API_KEY")
QUESTION = "How does a run stop when an agent loops? Use the recursion limit and call limits."


@pytest.fixture(scope="module")
def research_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # The default model is chosen when the server starts: no provider key around, so the
    # roles run on offline:research whatever the machine has set; no Tavily key either.
    with pytest.MonkeyPatch.context() as mp:
        for name in (*PROVIDER_ENV, "DOCKYARD_CONFIG_FILE"):
            mp.delenv(name, raising=False)
        server = LiveServer(
            tmp_path_factory.mktemp("research-data"),
            config=EXAMPLE / "dockyard.yaml",
            # The same graph with its model calls capped at one per agent, failing the run.
            assistants={
                "research-strict": {
                    "graph": "research",
                    "policies": {"limits": {"model_calls_per_run": 1, "exit": "error"}},
                }
            },
        ).start()
        yield server
        server.stop()
        sys.modules.pop("agent", None)


@pytest.fixture
async def sdk(research_server: LiveServer) -> AsyncIterator[LangGraphClient]:
    client = get_client(url=research_server.url, timeout=30)
    yield client
    await client.aclose()


def ask(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def calls(update: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (c["name"], c["args"])
        for node in update.values()
        if isinstance(node, dict)
        for m in node.get("messages") or []
        for c in m.get("tool_calls") or []
    ]


def tool_results(update: dict[str, Any]) -> dict[str, str]:
    return {
        m["name"]: m["content"]
        for node in update.values()
        if isinstance(node, dict)
        for m in node.get("messages") or []
        if m.get("type") == "tool"
    }


async def test_the_team_plans_delegates_and_cites_streamed_by_subgraph(
    sdk: LangGraphClient,
) -> None:
    thread_id = (await sdk.threads.create())["thread_id"]
    by_agent: dict[str, list[dict[str, Any]]] = {}
    top: list[str] = []
    async for part in sdk.runs.stream(
        thread_id, "research", input=ask(QUESTION), stream_mode="updates", stream_subgraphs=True
    ):
        event, _, namespace = part.event.partition("|")
        assert event != "error", part.data
        if event != "updates":
            continue
        if namespace:
            by_agent.setdefault(namespace.split(":")[0], []).append(part.data)
        else:
            top.extend(part.data)
    # The parent graph: supervisor -> researcher -> supervisor -> writer.
    assert top == ["supervisor", "researcher", "supervisor", "writer"]
    assert set(by_agent) == {"supervisor", "researcher", "writer"}

    handoffs = [c for u in by_agent["supervisor"] for c in calls(u)]
    assert [name for name, _ in handoffs] == ["transfer_to_researcher", "transfer_to_writer"]
    assert QUESTION in handoffs[0][1]["task"]

    # The researcher's own steps stay in its subgraph: the searches side by side, then it
    # reads the best document.
    searched = [c for u in by_agent["researcher"] for c in calls(u)]
    assert searched[:2] == [
        ("search_documents", {"query": QUESTION}),
        ("web_search", {"query": QUESTION}),
    ]
    assert searched[2] == ("read_document", {"doc_id": "token-budgets"})
    results: dict[str, str] = {}
    for u in by_agent["researcher"]:
        results.update(tool_results(u))
    assert results["search_documents"].startswith("[doc:token-budgets] Token budgets")
    # Offline, web search says so instead of returning nothing.
    assert results["web_search"].startswith("web search unavailable: no TAVILY_API_KEY is set")

    state = await sdk.threads.get_state(thread_id)
    report = state["values"]["report"]
    cited = [c["ref"] for c in report["citations"]]
    assert cited[0] == "token-budgets.md" and set(cited) <= DOCS
    assert report["unknown_citations"] == []
    final = state["values"]["messages"][-1]
    assert final["name"] == "writer" and final["content"] == report["text"]
    sources = report["text"].split("## Sources", 1)[1]
    for n, ref in enumerate(cited, 1):
        assert f"[{n}]" in report["text"].split("## Sources")[0]
        assert f"[{n}] " in sources and ref in sources
    # What the documents say made it into the report: the cited passage's first sentence.
    assert "A per-run limit stops a single request from running away. [1]" in report["text"]
    # Each agent's system prompt came from the registry (the example's prompts/ files).
    (run,) = await sdk.runs.list(thread_id)
    used = {(p["name"], p["version"], p["label"]) for p in run["usage"]["prompts"]}
    assert used == {
        (f"research-{role}", 1, "production") for role in ("supervisor", "researcher", "writer")
    }


async def test_a_follow_up_question_starts_its_own_research(sdk: LangGraphClient) -> None:
    thread_id = (await sdk.threads.create())["thread_id"]
    await sdk.runs.wait(thread_id, "research", input=ask(QUESTION))
    # In Korean, like the guide: BM25 finds the Korean document by its word pieces.
    follow_up = "API 비용 예산 알림은 어떻게 설정하나요?"
    await sdk.runs.wait(thread_id, "research", input=ask(follow_up))
    report = (await sdk.threads.get_state(thread_id))["values"]["report"]
    assert report["question"] == follow_up
    assert report["citations"][0]["ref"] == "operations-cost-ko.md"
    assert "token-budgets.md" not in report["text"]  # the first question's sources are gone
    assert "일일 예산을 정해 두고" in report["text"]


async def test_the_step_limit_stops_the_run_with_an_error(sdk: LangGraphClient) -> None:
    # The run's recursion_limit bounds the team's steps and each agent's: 8 cannot hold the
    # researcher's searches (each agent step is a model node plus the middleware's hooks).
    thread_id = (await sdk.threads.create())["thread_id"]
    errors = [
        part.data
        async for part in sdk.runs.stream(
            thread_id, "research", input=ask(QUESTION), config={"recursion_limit": 8}
        )
        if part.event == "error"
    ]
    assert [e["error"] for e in errors] == ["GraphRecursionError"]
    assert errors[0]["message"].startswith("Recursion limit of 8 reached")
    (run,) = await sdk.runs.list(thread_id)
    assert run["status"] == "error"
    assert run["error"]["error"] == "GraphRecursionError"
    assert (await sdk.threads.get(thread_id))["status"] == "error"
    assert (await sdk.threads.get_state(thread_id))["values"].get("report") is None


async def test_the_call_limit_policy_fails_a_run_that_needs_more_calls(
    sdk: LangGraphClient,
) -> None:
    # policies.limits of the `research-strict` assistant: one model call per agent, exit:
    # error. The supervisor's one call hands off; the researcher's second call is refused.
    thread_id = (await sdk.threads.create())["thread_id"]
    # langgraph-sdk raises the run's recorded error.
    with pytest.raises(Exception, match=r"^ModelCallLimitExceededError: .*run limit \(1/1\)$"):
        await sdk.runs.wait(thread_id, "research-strict", input=ask(QUESTION))
    (run,) = await sdk.runs.list(thread_id)
    assert run["status"] == "error" and run["usage"]["model_calls"] == 2


async def test_example_client_script(
    research_server: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = importlib.util.spec_from_file_location("research_client", EXAMPLE / "client.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert await module.main(research_server.url) == 0
    out = capsys.readouterr().out
    assert "  [supervisor] calls transfer_to_researcher(" in out
    assert "  [researcher] web_search -> web search unavailable: no TAVILY_API_KEY" in out
    assert "[team] writer done" in out
    assert "## Sources" in out and "cited: ['token-budgets.md'" in out
