"""A run's own spending cap (``policies.limits.cost_usd_per_run``) as a client sees it: a
graph making three model calls of a known price (the mock answers 1,000 + 1,000 tokens of a
model priced in ``policies.prices``: $0.005 a call) under a cap of $0.01 is stopped before
its third call with a 402 ``budget_exceeded`` naming the run; an assistant with a cap of
its own makes all three."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from langgraph_sdk import get_client

from dockyard.errors import ConfigError
from dockyard.settings import load_settings
from dockyard.testing import MockOpenAIServer
from tests.conftest import LiveServer
from tests.policies.test_budget_live import AGENT, script, user

pytestmark = pytest.mark.timeout(120)


def write_project(root: Path, openai_url: str) -> Path:
    (root / "agent.py").write_text(AGENT)
    config = {
        "graphs": {"loop": "./agent.py:loop"},
        "models": {"default": {"model": "openai:gpt-budget", "base_url": openai_url}},
        "policies": {
            "prices": {"gpt-budget": {"input": 1.0, "output": 4.0}},
            "limits": {"cost_usd_per_run": 0.01},
        },
        "assistants": {
            "roomy": {"graph": "loop", "policies": {"limits": {"cost_usd_per_run": 1.0}}}
        },
    }
    path = root / "dockyard.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def mock() -> Iterator[MockOpenAIServer]:
    with MockOpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, mock: MockOpenAIServer
) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("run-cost")
    live = LiveServer(root / "data", config=write_project(root, mock.base_url)).start()
    yield live
    live.stop()


async def test_a_run_stops_at_its_own_cap(server: LiveServer, mock: MockOpenAIServer) -> None:
    script(mock, 3)
    before = len([r for r in mock.requests if r.method == "POST"])
    client = get_client(url=server.url, timeout=60)
    try:
        thread = await client.threads.create()
        with pytest.raises(httpx.HTTPStatusError) as stopped:
            await client.runs.wait(thread["thread_id"], "loop", input=user("go"))
        assert stopped.value.response.status_code == 402
        body = stopped.value.response.json()
        assert body["code"] == "budget_exceeded"
        assert "this run has spent $0.01 of its $0.01 limit" in body["detail"]
        assert len([r for r in mock.requests if r.method == "POST"]) - before == 2
        (run,) = await client.runs.list(thread["thread_id"])
        assert run["status"] == "error"
        assert run["usage"]["cost_usd"] == pytest.approx(0.01)
    finally:
        await client.aclose()


async def test_an_assistants_own_cap_replaces_the_default(
    server: LiveServer, mock: MockOpenAIServer
) -> None:
    script(mock, 3)
    client = get_client(url=server.url, timeout=60)
    try:
        values = await client.runs.wait(None, "roomy", input=user("go"))
        assert isinstance(values, dict) and len(values["messages"]) == 4
    finally:
        await client.aclose()


def test_a_cap_must_be_positive(tmp_path: Path) -> None:
    path = tmp_path / "dockyard.yaml"
    path.write_text(yaml.safe_dump({"policies": {"limits": {"cost_usd_per_run": 0}}}))
    with pytest.raises(ConfigError, match="cost_usd_per_run"):
        load_settings(config_file=path)
