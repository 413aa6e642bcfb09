"""Model and tool calls in ``/metrics``, as users make them: a graph on ``chat_model`` with
a tool (langgraph-sdk, streamed) and the gateway (the ``openai`` client), both against the
mock OpenAI server; the values move by exactly what the mock answered."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from langgraph_sdk import get_sync_client

from dockyard.policies.prices import DEFAULT_PRICES
from dockyard.testing import MockAnthropicServer, MockOpenAIServer
from dockyard.testing.pytest_plugin import mock_anthropic, mock_openai
from tests.conftest import LiveServer, make_key
from tests.observability.scrape import Scrape, scrape

__all__ = ["mock_anthropic", "mock_openai"]

AGENT = """
from langchain.agents import create_agent
from langchain_core.tools import tool

from dockyard import chat_model


@tool
def lookup(city: str) -> str:
    \"\"\"The weather in a city.\"\"\"
    return f"sunny in {city}"


@tool
def broken(city: str) -> str:
    \"\"\"Always fails.\"\"\"
    raise ValueError("no such city")


graph = create_agent(chat_model("default"), tools=[lookup, broken])
"""

MODEL = "gpt-4o-mini"  # priced in the shipped table, with a known context window
NAME = "default"  # its name under models:, the label of its calls


def write_project(root: Path, openai_url: str, anthropic_url: str, **extra: Any) -> Path:
    (root / "agent.py").write_text(AGENT)
    (root / "key").write_text("test-key")
    config = {
        "graphs": {"agent": "./agent.py:graph"},
        "models": {
            "default": {
                "model": f"openai:{MODEL}",
                "base_url": openai_url,
                "api_key_file": "key",
                "fallbacks": ["backup"],
                "retry": {
                    "max_attempts": 2,
                    "backoff_min_seconds": 0.01,
                    "backoff_max_seconds": 0.02,
                },
                "breaker": {"failures": 2, "cooldown_seconds": 600},
            },
            "backup": {
                "model": "anthropic:claude-backup",
                "base_url": anthropic_url,
                "api_key_file": "key",
            },
        },
        **extra,
    }
    path = root / "dockyard.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def server(
    tmp_path: Path, mock_openai: MockOpenAIServer, mock_anthropic: MockAnthropicServer
) -> Iterator[LiveServer]:
    config = write_project(
        tmp_path,
        mock_openai.base_url,
        mock_anthropic.base_url,
        policies={"cache": {"ttl_seconds": 60}, "budget": {"daily_usd": 5.0}},
    )
    s = LiveServer(tmp_path / "data", config=config).start()
    yield s
    s.stop()


class Moved:
    def __init__(self, before: Scrape, after: Scrape) -> None:
        self.before, self.after = before, after

    def __call__(self, name: str, **labels: str) -> float:
        return self.after.value(name, **labels) - self.before.value(name, **labels)


def test_a_run_counts_its_model_and_tool_calls(
    server: LiveServer, mock_openai: MockOpenAIServer
) -> None:
    mock_openai.enqueue_tool_call("lookup", {"city": "Seoul"})
    mock_openai.enqueue_text("It is sunny in Seoul.", input_tokens=40, output_tokens=6)
    before = scrape(server.url)
    client = get_sync_client(url=server.url, timeout=60)
    thread = client.threads.create()
    parts = list(
        client.runs.stream(
            thread["thread_id"],
            "agent",
            input={"messages": [{"role": "user", "content": "weather in Seoul?"}]},
            stream_mode="messages-tuple",
        )
    )
    assert parts[-1].event != "error", parts[-1]
    moved = Moved(before, scrape(server.url))
    assert len([r for r in mock_openai.requests if r.method == "POST"]) == 2
    assert moved("dockyard_model_requests_total", model=NAME, status="ok") == 2
    assert moved("dockyard_model_request_duration_seconds_count", model=NAME) == 2
    # Streamed (messages mode): each call has a first token.
    assert moved("dockyard_model_time_to_first_token_seconds_count", model=NAME) == 2
    run = client.runs.list(thread["thread_id"])[0]
    tokens_in = moved("dockyard_model_tokens_total", model=NAME, kind="input")
    assert tokens_in == run["usage"]["input_tokens"] > 40
    tokens_out = moved("dockyard_model_tokens_total", model=NAME, kind="output")
    assert tokens_out == run["usage"]["output_tokens"] > 6
    cost = moved("dockyard_cost_usd_total", model=NAME, tenant="", assistant="agent")
    assert cost == pytest.approx(run["usage"]["cost_usd"])
    assert cost > 0  # priced: DEFAULT_PRICES has the model
    assert moved("dockyard_context_window_ratio_count", model=NAME) == 2
    assert moved("dockyard_tool_calls_total", tool="lookup", status="ok") == 1
    assert moved("dockyard_tool_call_duration_seconds_count", tool="lookup") == 1
    assert moved("dockyard_runs_total", assistant="agent", status="success") == 1
    assert moved("dockyard_streams_open") == 0


def test_a_failing_tool_counts_as_an_error(
    server: LiveServer, mock_openai: MockOpenAIServer
) -> None:
    mock_openai.enqueue_tool_call("broken", {"city": "Nowhere"})
    before = scrape(server.url)
    client = get_sync_client(url=server.url, timeout=60)
    thread = client.threads.create()
    with pytest.raises(Exception, match="no such city"):
        client.runs.wait(
            thread["thread_id"], "agent", input={"messages": [{"role": "user", "content": "?"}]}
        )
    moved = Moved(before, scrape(server.url))
    assert moved("dockyard_tool_calls_total", tool="broken", status="error") == 1
    assert moved("dockyard_tool_calls_total", tool="broken", status="ok") == 0
    assert moved("dockyard_runs_total", assistant="agent", status="error") == 1


def test_gateway_calls_count_with_cache_and_budget(
    server: LiveServer, mock_openai: MockOpenAIServer
) -> None:
    mock_openai.enqueue_text("Sunny.", input_tokens=12, output_tokens=4)
    gateway = openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-client", max_retries=0)
    before = scrape(server.url)
    question = [{"role": "user", "content": "weather in Seoul, in one word?"}]
    for _ in range(2):  # the second is the cache's
        reply = gateway.chat.completions.create(model="default", messages=question, temperature=0)
        assert reply.choices[0].message.content == "Sunny."
    after = scrape(server.url)
    moved = Moved(before, after)
    assert len([r for r in mock_openai.requests if r.method == "POST"]) == 1
    assert moved("dockyard_cache_requests_total", result="miss") == 1
    assert moved("dockyard_cache_requests_total", result="hit") == 1
    assert moved("dockyard_model_requests_total", model=NAME, status="ok") == 1
    assert moved("dockyard_model_tokens_total", model=NAME, kind="input") == 12
    assert moved("dockyard_model_tokens_total", model=NAME, kind="output") == 4
    assert moved("dockyard_context_window_ratio_count", model=NAME) == 1
    assert moved("dockyard_context_window_ratio_sum", model=NAME) == pytest.approx(12 / 128_000)
    cost = moved("dockyard_cost_usd_total", model=NAME, tenant="", assistant="gateway:default")
    price = DEFAULT_PRICES.lookup(f"openai:{MODEL}", MODEL, None)
    assert price is not None
    assert cost == pytest.approx(price[1].cost(12, 4, 0, 0))
    budget = {"scope": "anonymous", "owner": "", "period": "daily"}
    assert after.value("dockyard_budget_limit_usd", **budget) == 5.0
    spent = after.value("dockyard_budget_spent_usd", **budget)
    assert spent == pytest.approx(cost, abs=1e-9)
    assert after.value("dockyard_budget_remaining_usd", **budget) == pytest.approx(5.0 - spent)


def test_retries_fallbacks_and_the_breaker(
    server: LiveServer, mock_openai: MockOpenAIServer, mock_anthropic: MockAnthropicServer
) -> None:
    gateway = openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-client", max_retries=0)
    before = scrape(server.url)
    # Two attempts fail (one retry), the breaker trips, the fallback answers.
    mock_openai.fail_next(500, times=2)
    mock_anthropic.enqueue_text("From the backup.")
    reply = gateway.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "hi"}], temperature=0.5
    )
    assert reply.choices[0].message.content == "From the backup."
    after = scrape(server.url)
    moved = Moved(before, after)
    assert moved("dockyard_model_retries_total", model="default") == 1
    assert moved("dockyard_model_fallbacks_total", model="default", fallback="backup") == 1
    assert after.value("dockyard_breaker_state", model="default") == 2
    # Counted under the model asked for, as the usage ledger counts it.
    assert moved("dockyard_model_requests_total", model=NAME, status="ok") == 1
    # The next call is refused by the open breaker and answered by the backup again.
    mock_anthropic.enqueue_text("Backup again.")
    gateway.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "hi"}], temperature=0.5
    )
    assert Moved(after, scrape(server.url))("dockyard_model_fallbacks_total", model="default") == 1


def test_an_assistant_made_over_the_api_counts_under_its_graph(
    server: LiveServer, mock_openai: MockOpenAIServer
) -> None:
    mock_openai.enqueue_text("Hello.", input_tokens=9, output_tokens=2)
    client = get_sync_client(url=server.url, timeout=60)
    made = client.assistants.create("agent", name=f"made-{uuid.uuid4()}")
    before = scrape(server.url)
    thread = client.threads.create()
    client.runs.wait(
        thread["thread_id"],
        made["assistant_id"],
        input={"messages": [{"role": "user", "content": "hi"}]},
    )
    after = scrape(server.url)
    moved = Moved(before, after)
    assert moved("dockyard_runs_total", assistant="agent", status="success") == 1
    assert moved("dockyard_cost_usd_total", model=NAME, tenant="", assistant="agent") > 0
    labels = after.label_values()
    assert made["assistant_id"] not in labels and made["name"] not in labels


def test_a_tokens_limit_refusal_counts(
    tmp_path: Path, mock_openai: MockOpenAIServer, mock_anthropic: MockAnthropicServer
) -> None:
    config = write_project(
        tmp_path,
        mock_openai.base_url,
        mock_anthropic.base_url,
        policies={"rate_limit": {"tokens_per_minute": 5}},
    )
    s = LiveServer(tmp_path / "data", config=config).start()
    try:
        # Tokens per minute are a key's (or its tenant's): an open server's call has none.
        key = make_key(s)
        gateway = openai.OpenAI(base_url=f"{s.url}/v1", api_key=key, max_retries=0)
        before = scrape(s.url)
        long = " ".join(["word"] * 50)
        with pytest.raises(openai.RateLimitError):
            gateway.chat.completions.create(
                model="default", messages=[{"role": "user", "content": long}]
            )
        moved = Moved(before, scrape(s.url))
        assert moved("dockyard_rate_limited_total", limit="tokens") == 1
        assert moved("dockyard_policy_refusals_total", code="rate_limited") == 1
        route = "/v1/chat/completions"
        assert moved("dockyard_http_requests_total", route=route, status="429") == 1
        assert moved("dockyard_model_requests_total", model=NAME) == 0
    finally:
        s.stop()


def test_a_failed_model_call_counts_as_an_error(
    server: LiveServer, mock_openai: MockOpenAIServer, mock_anthropic: MockAnthropicServer
) -> None:
    gateway = openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-client", max_retries=0)
    before = scrape(server.url)
    mock_openai.fail_next(500, times=2)
    mock_anthropic.fail_next(500, times=10)  # the Anthropic SDK retries on its own
    with pytest.raises(openai.APIStatusError):
        gateway.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "hi"}], temperature=0.5
        )
    moved = Moved(before, scrape(server.url))
    assert moved("dockyard_model_requests_total", model=NAME, status="error") == 1
    assert moved("dockyard_model_requests_total", model=NAME, status="ok") == 0
    assert moved("dockyard_policy_refusals_total", code="provider_unavailable") == 1
