"""A graph on ``chat_model(...)`` answers from the models of the serving project's dockyard.yaml.

The project's ``default`` model is a real ``ChatOpenAI`` pointed at dockyard's mock OpenAI
server; ``fast`` is a fake model. Both layouts: the embedded server (the graph runs in the
API process) and an API-only server with a worker process (the graph runs in the worker,
which builds its own registry from the same file). The registry is never shown to a client.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_client

from dockyard.providers.registry import MODELS_KEY
from dockyard.testing import MockOpenAIServer
from tests.cluster import cluster
from tests.conftest import LiveServer

pytestmark = pytest.mark.timeout(300)

AGENT = """
from typing import Any

from langgraph.graph import START, MessagesState, StateGraph

from dockyard import chat_model

model = chat_model("default")
fast = chat_model("fast")


def build(chosen: Any) -> Any:
    async def answer(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await chosen.ainvoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("answer", answer)
    graph.add_edge(START, "answer")
    return graph.compile()


graph = build(model)
quick = build(fast)
"""

DOCKYARD_YAML = """
graphs:
  answer: ./agent.py:graph
  quick: ./agent.py:quick
models:
  default: {{model: "openai:gpt-4o-mini", base_url: {base_url!r}, max_retries: 0}}
  fast: fake:fast
"""

ALL_MODES = ["values", "updates", "messages", "debug", "checkpoints", "tasks", "events"]


def user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


@pytest.fixture(scope="module")
def mock() -> Iterator[MockOpenAIServer]:
    with MockOpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, mock: MockOpenAIServer) -> Path:
    root = tmp_path_factory.mktemp("registry-project")
    (root / "agent.py").write_text(AGENT)
    (root / "dockyard.yaml").write_text(DOCKYARD_YAML.format(base_url=mock.base_url))
    return root / "dockyard.yaml"


async def check_models_answer(url: str, mock: MockOpenAIServer) -> None:
    client = get_client(url=url, timeout=60)
    try:
        before = len(mock.requests)
        mock.enqueue_text("from the configured model")
        out = await client.runs.wait(None, "answer", input=user("hello"))
        assert isinstance(out, dict)
        assert out["messages"][-1]["content"] == "from the configured model"
        calls = [r for r in mock.requests[before:] if r.path.endswith("/chat/completions")]
        assert [r.model for r in calls] == ["gpt-4o-mini"]

        out = await client.runs.wait(None, "quick", input=user("echo me"))
        assert isinstance(out, dict)
        reply = out["messages"][-1]
        assert reply["content"] == "echo me" and reply["response_metadata"]["model_name"] == "fast"

        # Streamed token by token from the provider; the registry is in no event,
        # no run, no state and no checkpoint a client can read.
        thread_id = (await client.threads.create())["thread_id"]
        mock.enqueue_text("streamed from the mock")
        parts = [
            part
            async for part in client.runs.stream(
                thread_id, "answer", input=user("stream it"), stream_mode=ALL_MODES
            )
        ]
        events = {p.event.split("|")[0] for p in parts}
        assert {"messages/partial", "debug", "checkpoints", "events"} <= events, events
        partial = [p.data[0]["content"] for p in parts if p.event == "messages/partial"]
        assert len(partial) > 1 and partial[-1] == "streamed from the mock"
        shown: list[Any] = [p.data for p in parts]
        shown.append(await client.runs.list(thread_id))
        shown.append(await client.threads.get_state(thread_id))
        shown.append(await client.threads.get_history(thread_id))
        shown.append(await client.assistants.search(graph_id="answer"))
        text = json.dumps(shown, default=str)
        assert MODELS_KEY not in text and "ModelRegistry" not in text
        assert "streamed from the mock" in text
    finally:
        await client.aclose()


async def test_embedded(project: Path, mock: MockOpenAIServer, tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data", config=project).start()
    try:
        await check_models_answer(server.url, mock)
    finally:
        server.stop()


async def test_api_and_worker(project: Path, mock: MockOpenAIServer, tmp_path: Path) -> None:
    with cluster(tmp_path, apis=1, workers=1, config=project) as c:
        await check_models_answer(c.apis[0].url, mock)
