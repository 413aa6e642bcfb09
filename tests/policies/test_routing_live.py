"""Routing tiers, per-assistant policies and gateway usage, as users see them: one live
server, one graph whose module-level ``chat_model("default")`` answers every assistant,
langgraph-sdk and the openai client, a mock OpenAI server that tells which model each
call reached (each tier is another model name)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from langgraph_sdk import get_client
from langgraph_sdk.errors import APIStatusError
from typer.testing import CliRunner

from dockyard.cli.main import app
from dockyard.runtime.assistants import configured_assistant_id
from dockyard.testing import MockOpenAIServer, MockReply
from tests.conftest import LiveServer, make_key
from tests.pg import fresh_database_sync

AGENT = """
from langgraph.graph import START, MessagesState, StateGraph

from dockyard import chat_model

MODEL = chat_model("default")


async def ask(state: MessagesState):
    return {"messages": [await MODEL.ainvoke(state["messages"])]}


_g = StateGraph(MessagesState)
_g.add_node("ask", ask)
_g.add_edge(START, "ask")
graph = _g.compile()
"""

LONG = "word " * 60  # 300 characters: over the fast tier's min_chars
EMAIL = "write to kim@example.com please"


def config(mock_url: str) -> dict[str, Any]:
    model = {"base_url": mock_url, "api_key_file": "key"}
    return {
        "graphs": {"agent": "./agent.py:graph"},
        "models": {
            "default": {"model": "openai:gpt-quality", **model},
            "fast": {"model": "openai:gpt-fast", **model},
            "balanced": {"model": "openai:gpt-balanced", **model},
        },
        "policies": {
            "pii": {"action": "mask", "entities": ["email"]},
            "prices": {
                "gpt-quality": {"input": 10, "output": 30},
                "gpt-fast": {"input": 1, "output": 2},
                "gpt-balanced": {"input": 3, "output": 6},
            },
            "routing": {
                "tiers": {"fast": "fast", "balanced": "balanced", "quality": "default"},
                "rules": [
                    {"tier": "fast", "min_chars": 200},
                    {"tier": "balanced", "priority": ["urgent", "high"]},
                    {"tier": "balanced", "min_tools": 2},
                ],
                "default": "quality",
            },
        },
        "assistants": {
            # No masking, no routing: the model itself.
            "support": {"graph": "agent", "policies": {"pii": None, "routing": None}},
            # Redacted rather than masked, and short requests only.
            "strict": {
                "graph": "agent",
                "description": "short questions",
                "policies": {
                    "pii": {"action": "redact", "entities": ["email"]},
                    "input": {"max_chars": 100},
                },
            },
        },
    }


@dataclass
class Project:
    root: Path
    url: str
    mock: MockOpenAIServer
    env: dict[str, str]
    server: LiveServer

    def calls(self) -> list[dict[str, Any]]:
        """The chat requests the mock received since the last call of this."""
        got = [r.body for r in self.mock.requests if r.method == "POST"]
        self.mock.reset()
        return got


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def project(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("routing")
    with contextlib.ExitStack() as stack:
        mock = stack.enter_context(MockOpenAIServer())
        (root / "key").write_text("test-key")
        (root / "agent.py").write_text(AGENT)
        (root / "dockyard.yaml").write_text(yaml.safe_dump(config(mock.base_url)))
        # The CLI (dockyard usage) finds the same database: the default data_dir, or the URL.
        env: dict[str, str] = {}
        if request.param == "postgres":
            env["DOCKYARD_DATABASE_URL"] = stack.enter_context(fresh_database_sync())
        server = LiveServer(
            root / ".dockyard",
            config=root / "dockyard.yaml",
            database_url=env.get("DOCKYARD_DATABASE_URL"),
        )
        stack.callback(server.start().stop)
        yield Project(root, server.url, mock, env, server)


def ask(text: str, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}], **extra}


async def run(project: Project, assistant: str, input: dict[str, Any], **kw: Any) -> Any:
    client = get_client(url=project.url)
    try:
        thread = await client.threads.create()
        await client.runs.wait(thread["thread_id"], assistant, input=input, **kw)
        (got,) = await client.runs.list(thread["thread_id"])
        return got
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("input", "context", "tier", "model"),
    [
        (ask("hi"), None, "quality", "gpt-quality"),  # no rule holds: the default tier
        (ask(LONG), None, "fast", "gpt-fast"),
        (ask(LONG, priority="urgent"), None, "fast", "gpt-fast"),  # the first rule wins
        (ask("hi"), {"priority": "high"}, "balanced", "gpt-balanced"),
        (ask("hi", priority="urgent"), None, "balanced", "gpt-balanced"),
        (ask("hi", priority="low"), None, "quality", "gpt-quality"),
    ],
)
async def test_a_run_is_routed_by_the_rules_and_records_its_tier(
    project: Project, input: dict[str, Any], context: Any, tier: str, model: str
) -> None:
    project.calls()
    got = await run(project, "agent", input, context=context)
    assert got["status"] == "success"
    (call,) = project.calls()
    assert call["model"] == model
    usage = got["usage"]
    assert usage["tiers"] == {tier: 1}
    assert usage["calls"][0]["tier"] == tier
    # The call is the tier model's own: its name, its price.
    assert set(usage["models"]) == {model}
    assert usage["cost_usd"] > 0


async def test_configured_assistants_are_listed_and_run_by_name(project: Project) -> None:
    client = get_client(url=project.url)
    try:
        found = {a["name"]: a for a in await client.assistants.search(graph_id="agent")}
        assert {"agent", "support", "strict"} <= set(found)
        assert found["support"]["assistant_id"] == configured_assistant_id("support")
        assert found["strict"]["description"] == "short questions"
        got = await client.assistants.get(configured_assistant_id("strict"))
        assert got["graph_id"] == "agent"
    finally:
        await client.aclose()
    models = openai.OpenAI(base_url=f"{project.url}/v1", api_key="x").models.list()
    assert {"agent", "support", "strict"} <= {m.id for m in models.data}


async def test_one_chat_model_serves_assistants_with_their_own_policies(
    project: Project,
) -> None:
    project.calls()
    await run(project, "agent", ask(EMAIL))
    await run(project, "support", ask(EMAIL + " " + LONG))
    await run(project, "strict", ask(EMAIL))
    masked, plain, redacted = project.calls()
    # Defaults: masked, routed.
    assert "kim@example.com" not in json.dumps(masked["messages"])
    assert masked["model"] == "gpt-quality"
    # support: PII off and routing off, so a long text stays on the model itself.
    assert "kim@example.com" in plain["messages"][-1]["content"]
    assert plain["model"] == "gpt-quality"
    # strict: redacted, not masked (another text), and still routed (the default block).
    text = redacted["messages"][-1]["content"]
    assert "kim@example.com" not in text
    assert text != masked["messages"][-1]["content"]
    # By name through the OpenAI-compatible route too.
    chat = openai.OpenAI(base_url=f"{project.url}/v1", api_key="x", max_retries=0)
    chat.chat.completions.create(model="support", messages=[{"role": "user", "content": EMAIL}])
    chat.chat.completions.create(model="agent", messages=[{"role": "user", "content": EMAIL}])
    plain, masked = project.calls()
    assert "kim@example.com" in plain["messages"][-1]["content"]
    assert "kim@example.com" not in json.dumps(masked["messages"])


async def test_an_assistants_input_guard_is_its_own(project: Project) -> None:
    client = get_client(url=project.url)
    try:
        thread = await client.threads.create()
        with pytest.raises(APIStatusError) as refused:
            await client.runs.create(thread["thread_id"], "strict", input=ask(LONG))
        assert refused.value.status_code == 413
        assert "input_too_large" in str(refused.value.body)
        # The defaults have no input limit: the same request to the graph runs.
        ran = await client.runs.wait(thread["thread_id"], "agent", input=ask(LONG))
        assert ran is not None
    finally:
        await client.aclose()


def usage_rows(project: Project, by: str = "assistant") -> dict[str, dict[str, Any]]:
    result = CliRunner().invoke(
        app,
        ["usage", "--config", str(project.root / "dockyard.yaml"), "--by", by, "--json"],
        env={"COLUMNS": "160", **project.env},
    )
    assert result.exit_code == 0, result.output
    return (
        {r["group"]: r for r in json.loads(result.output)}
        if result.output.strip()[:1] == "["
        else {}
    )


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}


def test_the_gateway_routes_says_the_tier_and_records_usage(project: Project) -> None:
    project.calls()
    project.mock.enqueue(MockReply(text="ok", input_tokens=100, output_tokens=10))
    project.mock.enqueue(MockReply(text="ok", input_tokens=100, output_tokens=10))
    project.mock.enqueue(MockReply(text="ok", input_tokens=100, output_tokens=10))
    client = openai.OpenAI(base_url=f"{project.url}/v1", api_key="x", max_retries=0)
    two_tools = client.chat.completions.with_raw_response.create(
        model="default", messages=[{"role": "user", "content": "hi"}], tools=[WEATHER, TIME]
    )
    assert two_tools.headers["x-dockyard-tier"] == "balanced"
    urgent = client.chat.completions.with_raw_response.create(
        model="default",
        messages=[{"role": "user", "content": "hi"}],
        metadata={"priority": "urgent"},
    )
    assert urgent.headers["x-dockyard-tier"] == "balanced"
    streamed = client.chat.completions.with_raw_response.create(
        model="default",
        messages=[{"role": "user", "content": LONG}],
        stream=True,
        stream_options={"include_usage": True},
    )
    assert streamed.headers["x-dockyard-tier"] == "fast"
    assert "".join(c.choices[0].delta.content or "" for c in streamed.parse() if c.choices)
    assert [c["model"] for c in project.calls()] == ["gpt-balanced", "gpt-balanced", "gpt-fast"]
    # A model that routing does not apply to answers without a tier.
    plain = httpx.post(
        f"{project.url}/v1/chat/completions",
        json={"model": "fast", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert plain.status_code == 200 and "x-dockyard-tier" not in plain.headers

    # The ledger rows are written in a batch, a moment after the answers.
    deadline = time.monotonic() + 10
    while (rows := usage_rows(project)).get("gateway:default", {}).get("calls", 0) < 3 or (
        "gateway:fast" not in rows
    ):
        assert time.monotonic() < deadline, rows
        time.sleep(0.05)
    row = rows["gateway:default"]
    assert row["calls"] == 3, rows
    assert row["input_tokens"] == 300
    # 2 calls of gpt-balanced, 1 of gpt-fast, at the configured prices.
    assert row["cost_usd"] == pytest.approx((2 * (100 * 3 + 10 * 6) + 100 * 1 + 10 * 2) / 1e6)
    assert rows["gateway:fast"]["calls"] == 1


def test_a_gateway_call_is_recorded_under_its_callers_tenant_and_key(project: Project) -> None:
    project.mock.enqueue(MockReply(text="ok", input_tokens=7, output_tokens=3))
    key = make_key(project.server, tenant="acme")
    reply = httpx.post(
        f"{project.url}/v1/chat/completions",
        headers={"x-api-key": key},
        json={"model": "balanced", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert reply.status_code == 200, reply.text
    deadline = time.monotonic() + 10
    while "acme" not in (rows := usage_rows(project, "tenant")):
        assert time.monotonic() < deadline, rows
        time.sleep(0.05)
    assert (rows["acme"]["calls"], rows["acme"]["input_tokens"]) == (1, 7)
    key_rows = usage_rows(project, "key")
    assert [r["output_tokens"] for k, r in key_rows.items() if k and k.startswith("key_")] == [3]
