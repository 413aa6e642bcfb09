"""Usage and cost as a user sees them: a graph calling bare ``ChatOpenAI`` models (no
dockyard model, no middleware) against the mock OpenAI server; ``runs.get`` shows what
each model used and cost, streamed or not, and ``dockyard usage`` sums the runs.

One model has a shipped price (gpt-4o-mini), one a price from dockyard.yaml
(house-model), one none (mystery-model): its cost is unknown, never guessed.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_client, get_sync_client
from typer.testing import CliRunner

from dockyard.cli.main import app
from dockyard.testing import MockOpenAIServer, MockReply
from tests.conftest import LiveServer
from tests.pg import fresh_database_sync

AGENT = """
from langchain_openai import ChatOpenAI
from langgraph.graph import START, MessagesState, StateGraph


def _model(name):
    return ChatOpenAI(
        model=name, base_url={base_url!r}, api_key="test-key", max_retries=0, stream_usage=True
    )


MODELS = [_model("gpt-4o-mini"), _model("house-model"), _model("mystery-model")]


async def ask(state: MessagesState):
    return {{"messages": [await model.ainvoke(state["messages"]) for model in MODELS]}}


_g = StateGraph(MessagesState)
_g.add_node("ask", ask)
_g.add_edge(START, "ask")
graph = _g.compile()
"""

DOCKYARD_YAML = """
graphs:
  priced: ./agent.py:graph
policies:
  prices:
    house-model: {input: 1.0, output: 2.0, cached_input: 0.1}
"""

INPUT = {"messages": [{"role": "user", "content": "hello"}]}
# Each call: 1000 input and 250 output tokens, as the mock reports them.
MINI_COST = 1000 * 0.15e-6 + 250 * 0.60e-6
HOUSE_COST = 1000 * 1.0e-6 + 250 * 2.0e-6


@dataclass
class Project:
    root: Path
    url: str
    mock: MockOpenAIServer
    env: dict[str, str]

    def script(self, runs: int) -> None:
        for _ in range(runs * 3):
            self.mock.enqueue(MockReply(text="fine thanks", input_tokens=1000, output_tokens=250))

    def usage_cli(self, *args: str) -> Any:
        return CliRunner().invoke(
            app,
            ["usage", "--config", str(self.root / "dockyard.yaml"), *args],
            env={"COLUMNS": "160", **self.env},
        )


@pytest.fixture(params=["sqlite", "postgres"])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    with contextlib.ExitStack() as stack:
        mock = stack.enter_context(MockOpenAIServer())
        (tmp_path / "agent.py").write_text(AGENT.format(base_url=mock.base_url))
        (tmp_path / "dockyard.yaml").write_text(DOCKYARD_YAML)
        # The CLI finds the same database: this project's default data_dir, or the URL.
        env: dict[str, str] = {}
        if request.param == "postgres":
            env["DOCKYARD_DATABASE_URL"] = stack.enter_context(fresh_database_sync())
        config = tmp_path / "dockyard.yaml"
        database_url = env.get("DOCKYARD_DATABASE_URL")
        server = LiveServer(tmp_path / ".dockyard", config=config, database_url=database_url)
        stack.callback(server.start().stop)
        yield Project(tmp_path, server.url, mock, env)


def check_run_usage(usage: dict[str, Any], *, streamed: bool) -> None:
    assert usage["model_calls"] == 3
    assert (usage["input_tokens"], usage["output_tokens"]) == (3000, 750)
    mini, house, mystery = (
        usage["models"][name] for name in ("gpt-4o-mini", "house-model", "mystery-model")
    )
    assert (mini["calls"], mini["input_tokens"], mini["output_tokens"]) == (1, 1000, 250)
    assert mini["cost_usd"] == pytest.approx(MINI_COST)
    assert house["cost_usd"] == pytest.approx(HOUSE_COST)
    assert mystery["cost_usd"] is None and mystery["input_tokens"] == 1000
    assert usage["cost_usd"] == pytest.approx(MINI_COST + HOUSE_COST)
    assert usage["unpriced_models"] == ["mystery-model"]
    calls = usage["calls"]
    assert [c["model"] for c in calls] == ["gpt-4o-mini", "house-model", "mystery-model"]
    for call in calls:
        assert call["latency_ms"] > 0
        if streamed:
            assert call["first_token_ms"] is not None
            assert 0 < call["first_token_ms"] <= call["latency_ms"]
        else:
            assert call["first_token_ms"] is None


async def test_runs_get_shows_usage_and_cost_per_model(project: Project) -> None:
    project.script(runs=1)
    client = get_client(url=project.url)
    try:
        thread = await client.threads.create()
        run = await client.runs.create(thread["thread_id"], "priced", input=INPUT)
        await client.runs.join(thread["thread_id"], run["run_id"])
        got = await client.runs.get(thread["thread_id"], run["run_id"])
        assert got["status"] == "success"
        check_run_usage(got["usage"], streamed=False)
        # The run's own record as listed, too.
        (listed,) = await client.runs.list(thread["thread_id"])
        assert listed["usage"] == got["usage"]
    finally:
        await client.aclose()


async def test_a_streamed_run_records_streaming_usage(project: Project) -> None:
    project.script(runs=1)
    client = get_client(url=project.url)
    try:
        thread = await client.threads.create()
        run_id = None
        tokens = 0
        async for part in client.runs.stream(
            thread["thread_id"], "priced", input=INPUT, stream_mode="messages-tuple"
        ):
            if part.event == "metadata":
                run_id = part.data["run_id"]
            elif part.event == "messages":
                tokens += 1
        assert run_id is not None and tokens > 3  # the models streamed
        # The mock sent usage only in the stream's last chunk (stream_options.include_usage).
        sent = [r.body for r in project.mock.requests if r.path.endswith("/chat/completions")]
        assert all(b["stream"] and b["stream_options"] == {"include_usage": True} for b in sent)
        got = await client.runs.get(thread["thread_id"], run_id)
        check_run_usage(got["usage"], streamed=True)
    finally:
        await client.aclose()


def test_dockyard_usage_sums_the_runs(project: Project) -> None:
    assert project.usage_cli().output.strip() == "no model usage recorded"
    project.script(runs=2)
    client = get_sync_client(url=project.url)
    thread = client.threads.create()
    client.runs.wait(thread["thread_id"], "priced", input=INPUT)
    # A stateless run goes with its thread; its spend stays in the ledger.
    client.runs.wait(None, "priced", input=INPUT)

    result = project.usage_cli("--by", "model", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["group"]: r for r in json.loads(result.output)}
    assert set(rows) == {"gpt-4o-mini", "house-model", "mystery-model"}
    assert {r["calls"] for r in rows.values()} == {2}
    assert rows["gpt-4o-mini"]["input_tokens"] == 2000
    assert rows["gpt-4o-mini"]["cost_usd"] == pytest.approx(2 * MINI_COST)
    assert rows["house-model"]["cost_usd"] == pytest.approx(2 * HOUSE_COST)
    assert (rows["mystery-model"]["cost_usd"], rows["mystery-model"]["unpriced_calls"]) == (
        None,
        2,
    )

    table = project.usage_cli("--by", "assistant", "--since", "1d")
    assert table.exit_code == 0, table.output
    lines = [line for line in table.output.splitlines() if "priced (" in line]
    assert len(lines) == 1, table.output  # one assistant, one day
    cells = [c.strip() for c in lines[0].split("│")]
    total_cost = 2 * (MINI_COST + HOUSE_COST)
    assert cells[3:7] == ["6", "6000", "0", "1500"]
    assert cells[7] == f"{total_cost:.6f} (+2 unpriced)"

    bad = project.usage_cli("--by", "team")
    assert bad.exit_code == 2 and "team" in bad.output
    bad = project.usage_cli("--since", "yesterday")
    assert bad.exit_code == 2 and "--since" in bad.output
