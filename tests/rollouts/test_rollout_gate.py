"""A rollout rolled back by what the quality gate scored, end to end: no score is written
by the test. Half the users get version 2 of the prompt a graph sends to its model (the
mock OpenAI server echoes it); the gate scores every answer (docs/quality.md), records
each score with the run's rollout variant, and the rollout's check (docs/rollouts.md)
rolls the candidate back when its average falls below ``min_quality``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
import yaml
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from dockyard.prompts import Draft
from dockyard.rollouts import bucket
from dockyard.storage.sql.alerts import SqlAlerts
from dockyard.testing import MockOpenAIServer
from tests.conftest import LiveServer, eventually, make_key

pytestmark = pytest.mark.timeout(120)

AGENT = """
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.graph import START, MessagesState, StateGraph

from dockyard import chat_model, prompt

model = chat_model("default")


async def answer(state: MessagesState) -> dict[str, Any]:
    text = prompt("reply", label="production").render(ticket=state["messages"][-1].content)
    return {"messages": [await model.ainvoke([HumanMessage(text)])]}


graph = StateGraph(MessagesState)
graph.add_node("answer", answer)
graph.add_edge(START, "answer")
graph = graph.compile()
"""

ROLLOUT = "reply-v2"
USERS = [f"user-{i}" for i in range(12)]


def candidate(user: str) -> bool:
    return bucket(ROLLOUT, user) < 0.5


@pytest.fixture(scope="module")
def mock() -> Iterator[MockOpenAIServer]:
    with MockOpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, mock: MockOpenAIServer
) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("rollout-gate")
    (root / "agent.py").write_text(AGENT)
    (root / "prompts").mkdir()
    (root / "prompts" / "reply.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "reply",
                "type": "text",
                "template": "Refund approved for: {{ ticket }}",
                "labels": ["production"],
                "sample": {"ticket": "x"},
                "message": "v1",
            }
        )
    )
    config = {
        "graphs": {"answer": "./agent.py:graph"},
        "models": {
            "default": {"model": "openai:gpt-x", "base_url": mock.base_url, "temperature": 0}
        },
        "prompts": {"refresh_seconds": 0.2},
        "policies": {
            "quality": {
                "scorers": [
                    {"type": "contains", "values": ["refund"], "weight": 3},
                    {"type": "forbidden", "phrases": ["sorry"], "weight": 1},
                ],
                "max_retries": 0,
            }
        },
        "rollouts": {
            ROLLOUT: {
                "assistant": "answer",
                "candidate": {"prompt": "reply@2"},
                "share": 0.5,
                "rollback": {
                    "min_quality": 0.6,
                    "window_minutes": 5,
                    "min_runs": 3,
                    "check_seconds": 0.2,
                },
            }
        },
    }
    (root / "dockyard.yaml").write_text(yaml.safe_dump(config))
    live = LiveServer(root / "data", config=root / "dockyard.yaml").start()
    # Version 2 (the candidate) apologises and names no refund: the gate scores it 0.
    draft = Draft(
        name="reply",
        kind="text",
        template="Sorry, no help for: {{ ticket }}",
        sample={"ticket": "x"},
    )
    live.run(live.app.state.runtime.prompts.push(draft, author="test"))
    yield live
    live.stop()


@pytest.fixture
async def client(server: LiveServer) -> AsyncIterator[LangGraphClient]:
    c = get_client(url=server.url, timeout=30)
    yield c
    await c.aclose()


async def run(client: LangGraphClient, user: str) -> dict[str, Any]:
    thread = await client.threads.create()
    made = await client.runs.create(
        thread["thread_id"],
        "answer",
        input={"messages": [{"role": "user", "content": f"order of {user}"}]},
        metadata={"user_id": user},
    )
    await client.runs.join(thread["thread_id"], made["run_id"])
    got: dict[str, Any] = await client.runs.get(thread["thread_id"], made["run_id"])
    return got


async def test_the_gates_scores_roll_a_bad_candidate_back(
    server: LiveServer, client: LangGraphClient
) -> None:
    assert any(candidate(u) for u in USERS) and not all(candidate(u) for u in USERS)
    admin = {"x-api-key": make_key(server, tenant="ops", scopes=["admin"])}

    async def state() -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=server.url, headers=admin) as h:
            row: dict[str, Any] = (await h.get(f"/rollouts/{ROLLOUT}")).json()
            return row

    # Runs until the rollback: each one scored by the gate as its variant's prompt earns.
    seen: dict[str, list[float]] = {"stable": [], "candidate": []}
    for user in USERS:
        if (await state())["state"] != "active":
            break
        got = await run(client, user)
        if "dockyard_rollout" not in got["metadata"]:
            break  # rolled back between the check above and this run's creation
        variant = got["metadata"]["dockyard_rollout"]["variant"]
        assert variant == ("candidate" if candidate(user) else "stable"), (user, got["metadata"])
        q = got["quality"]
        seen[variant].append(q["score"])
        assert q["decision"] == ("reject" if variant == "candidate" else "accept"), q

    async def rolled_back() -> dict[str, Any] | None:
        row = await state()
        return row if row["state"] == "rolled_back" else None

    row = await eventually(rolled_back, timeout=20)
    assert row["changed_by"] == "auto" and "candidate quality" in row["reason"], row
    assert seen["candidate"] and set(seen["candidate"]) == {0.0}
    assert seen["stable"] and set(seen["stable"]) == {1.0}

    # The scores the rollback read are the gate's, split by variant.
    alerts = SqlAlerts(server.app.state.runtime.storage.engine)
    [aid] = server.run(alerts.assistant_ids("answer"))
    start = datetime.fromisoformat(row["started_at"])
    n, mean = server.run(alerts.quality(start, [aid], variant="candidate"))
    assert n >= 3 and mean == 0.0

    # After the rollback a candidate user gets the stable prompt, and it passes the gate.
    user = next(u for u in USERS if candidate(u))
    got = await run(client, user)
    assert got["quality"]["decision"] == "accept"
    assert got["metadata"].get("dockyard_rollout", {}).get("variant") in (None, "stable")
