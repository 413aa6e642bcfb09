"""The research team on the production layout: an API-only server and a worker over
PostgreSQL and Redis, the run streamed with its subgraphs through the API while the
worker executes it (offline roles, web search off)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langgraph_sdk import get_client

from tests.cluster import cluster

pytestmark = pytest.mark.timeout(180)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "research"
KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "DOCKYARD_MODELS__DEFAULT", "TAVILY_API_KEY")


async def test_the_team_runs_on_a_worker_over_postgres_and_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in KEYS:
        monkeypatch.delenv(name, raising=False)
    with cluster(tmp_path, apis=1, workers=1, config=EXAMPLE / "dockyard.yaml") as c:
        client = get_client(url=c.apis[0].url, timeout=60)
        try:
            thread_id = (await client.threads.create())["thread_id"]
            agents = set()
            run_id = None
            async for part in client.runs.stream(
                thread_id,
                "research",
                input={"messages": [{"role": "user", "content": "How do I cap cost per run?"}]},
                stream_mode="updates",
                stream_subgraphs=True,
            ):
                assert part.event != "error", part.data
                if part.event == "metadata":
                    run_id = part.data["run_id"]
                _, _, namespace = part.event.partition("|")
                if namespace:
                    agents.add(namespace.split(":")[0])
            state = (await client.threads.get_state(thread_id))["values"]
            (run,) = await client.runs.list(thread_id)
        finally:
            await client.aclose()
        worker_log = c.workers[0].log.read_text()
    assert agents == {"supervisor", "researcher", "writer"}
    assert run["run_id"] == run_id and run["status"] == "success"
    assert state["report"]["citations"][0]["ref"] == "token-budgets.md"
    assert "## Sources" in state["messages"][-1]["content"]
    # The worker ran it: the team's own log lines carry the run's id there.
    lines = [json.loads(line) for line in worker_log.splitlines() if line.startswith("{")]
    handoffs = [rec["event"] for rec in lines if rec.get("run_id") == run_id]
    assert "supervisor hands off to the researcher" in handoffs
    assert any(e.startswith("web search unavailable: no TAVILY_API_KEY") for e in handoffs)
