"""Retries, fallbacks and breakers of the named models, against the mock providers: the
registry's models as ``models:`` configures them, ChatOpenAI and ChatAnthropic over HTTP."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from langchain.agents import create_agent
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_core.tools import tool

from dockyard.errors import ConfigError, ProviderUnavailableError
from dockyard.policies.breaker_redis import RedisBreakerStore
from dockyard.policies.chain import ModelChain, model_wrap
from dockyard.providers.registry import ModelRegistry
from dockyard.settings import load_settings
from dockyard.testing import MockAnthropicServer, MockOpenAIServer
from tests.conftest import eventually
from tests.redis_server import REDIS_URL, fresh_prefix

FAST_RETRY = {
    "max_attempts": 3,
    "backoff_min_seconds": 0.01,
    "backoff_max_seconds": 0.02,
    "jitter_seconds": 0,
}


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order by id."""
    return f"order {order_id}: shipped"


Build = Callable[..., ModelRegistry]


@pytest.fixture
async def build(
    tmp_path: Path, mock_openai: MockOpenAIServer, mock_anthropic: MockAnthropicServer
) -> AsyncIterator[Build]:
    """Registries of ``default`` (OpenAI mock) falling back to ``backup`` (Anthropic mock),
    each as one process builds it; their Redis clients are closed afterwards."""
    (tmp_path / "anthropic.key").write_text("test-key")
    chains: list[ModelChain] = []

    def make(
        primary: dict[str, Any] | None = None,
        backup: dict[str, Any] | None = None,
        **settings: Any,
    ) -> ModelRegistry:
        models = {
            "default": {
                "model": "openai:gpt-primary",
                "base_url": mock_openai.base_url,
                "retry": FAST_RETRY,
                "breaker": {"failures": 5, "cooldown_seconds": 600},
                "fallbacks": ["backup"],
                **(primary or {}),
            },
            "backup": {
                "model": "anthropic:claude-backup",
                "base_url": mock_anthropic.base_url,
                "api_key_file": "anthropic.key",
                "retry": FAST_RETRY,
                **(backup or {}),
            },
        }
        path = tmp_path / "dockyard.yaml"
        path.write_text(yaml.safe_dump({"models": models, **settings}))
        loaded = load_settings(path)
        chains.append(model_wrap(loaded))
        return ModelRegistry.from_settings(loaded, wrap=chains[-1])

    yield make
    for chain in chains:
        await chain.aclose()


def chat_requests(server: MockOpenAIServer | MockAnthropicServer) -> int:
    return len([r for r in server.requests if r.method == "POST"])


async def test_a_429_storm_is_retried_then_falls_back_then_the_breaker_opens(
    build: Build, mock_openai: MockOpenAIServer, mock_anthropic: MockAnthropicServer
) -> None:
    model = build().get("default")
    mock_openai.fail_next(429, times=100, retry_after=0.01)

    reply = await model.ainvoke("where is my order?")
    assert reply.content == "where is my order?"  # the backup echoes
    assert reply.response_metadata["model_name"] == "claude-backup"
    assert (chat_requests(mock_openai), chat_requests(mock_anthropic)) == (3, 1)
    sent = [r.received_at for r in mock_openai.requests]
    assert all(b - a >= 0.01 for a, b in itertools.pairwise(sent))  # Retry-After waited for

    await model.ainvoke("again")  # failures 4 and 5 open the breaker: no third attempt
    assert (chat_requests(mock_openai), chat_requests(mock_anthropic)) == (5, 2)

    for n in range(3):  # open: the backup answers at once, the primary hears nothing
        assert (await model.ainvoke(f"open {n}")).content == f"open {n}"
    assert (chat_requests(mock_openai), chat_requests(mock_anthropic)) == (5, 5)


async def test_the_half_open_probe_closes_it_again(
    build: Build, mock_openai: MockOpenAIServer, mock_anthropic: MockAnthropicServer
) -> None:
    model = build({"breaker": {"failures": 1, "cooldown_seconds": 0.2}}).get("default")
    mock_openai.fail_next(503)
    await model.ainvoke("first")
    assert chat_requests(mock_openai) == 1  # the first failure opened it: no retry

    async def primary_answers() -> bool:
        reply = await model.ainvoke("probe")
        return bool(reply.response_metadata["model_name"] == "gpt-primary")

    await eventually(primary_answers)
    before = chat_requests(mock_anthropic)
    await model.ainvoke("closed")
    assert chat_requests(mock_anthropic) == before


async def test_every_model_failing_is_provider_unavailable(
    build: Build, mock_openai: MockOpenAIServer, mock_anthropic: MockAnthropicServer
) -> None:
    model = build({"breaker": {"failures": 2, "cooldown_seconds": 600}}).get("default")
    mock_openai.fail_next(500, times=3)
    mock_anthropic.fail_next(529, times=6)

    with pytest.raises(ProviderUnavailableError) as refused:
        await model.ainvoke("hi")
    assert refused.value.status_code == 503 and refused.value.code == "provider_unavailable"
    assert "default: circuit breaker open" in refused.value.message
    assert "backup: HTTP 529" in refused.value.message
    assert refused.value.retry_after is not None and 0 < refused.value.retry_after <= 600

    with pytest.raises(ProviderUnavailableError):
        await model.ainvoke("hi")
    assert chat_requests(mock_openai) == 2  # the breaker opened at the second failure


async def test_the_refusal_says_when_the_provider_asked_to_be_retried(
    build: Build, mock_openai: MockOpenAIServer
) -> None:
    retry = {**FAST_RETRY, "max_retry_after_seconds": 1}
    model = build({"retry": retry, "fallbacks": [], "breaker": None}).get("default")
    mock_openai.fail_next(429, retry_after=42)

    with pytest.raises(ProviderUnavailableError) as refused:
        await model.ainvoke("hi")
    assert refused.value.retry_after == 42
    assert refused.value.headers() == {"Retry-After": "42"}
    assert chat_requests(mock_openai) == 1  # 42 s is longer than we wait


async def test_a_bad_request_is_neither_retried_nor_sent_to_a_fallback(
    build: Build, mock_openai: MockOpenAIServer, mock_anthropic: MockAnthropicServer
) -> None:
    model = build().get("default")
    mock_openai.fail_next(400, message="messages: bad role")

    with pytest.raises(openai.BadRequestError):
        await model.ainvoke("hi")
    assert (chat_requests(mock_openai), chat_requests(mock_anthropic)) == (1, 0)


async def test_a_model_without_fallbacks_refuses_after_its_retries(
    build: Build, mock_openai: MockOpenAIServer
) -> None:
    model = build({"fallbacks": []}).get("default")
    mock_openai.fail_next(429, times=3)

    with pytest.raises(ProviderUnavailableError, match="default: HTTP 429"):
        await model.ainvoke("hi")
    assert chat_requests(mock_openai) == 3


async def test_tools_are_bound_in_the_fallback_providers_format(
    build: Build, mock_openai: MockOpenAIServer, mock_anthropic: MockAnthropicServer
) -> None:
    model = build().get("default").bind_tools([lookup_order], tool_choice="lookup_order")
    mock_openai.fail_next(500, times=3)
    mock_anthropic.enqueue_tool_call("lookup_order", {"order_id": "A1"}, call_id="toolu_1")

    reply = await model.ainvoke("where is A1?")

    assert reply.tool_calls[0]["args"] == {"order_id": "A1"}
    openai_body = mock_openai.requests[0].body
    assert openai_body["tools"][0]["function"]["name"] == "lookup_order"
    anthropic_body = mock_anthropic.requests[0].body
    assert anthropic_body["tools"][0]["name"] == "lookup_order"
    assert "input_schema" in anthropic_body["tools"][0]
    assert anthropic_body["tool_choice"] == {"type": "tool", "name": "lookup_order"}


async def test_an_agent_loop_carries_on_on_the_fallback(
    build: Build, mock_openai: MockOpenAIServer, mock_anthropic: MockAnthropicServer
) -> None:
    agent = create_agent(build({"breaker": None}).get("default"), [lookup_order])
    mock_openai.fail_next(503, times=6)  # both model calls of the loop
    mock_anthropic.enqueue_tool_call("lookup_order", {"order_id": "A1"})
    mock_anthropic.enqueue_text("Order A1 has shipped.")

    result = await agent.ainvoke({"messages": [HumanMessage("Where is order A1?")]})

    assert result["messages"][-1].content == "Order A1 has shipped."
    assert [m.type for m in result["messages"]] == ["human", "ai", "tool", "ai"]
    assert (chat_requests(mock_openai), chat_requests(mock_anthropic)) == (6, 2)
    # The fallback got the tools, and then the tool's result, in Anthropic's shapes.
    first, second = (r.body for r in mock_anthropic.requests)
    assert first["tools"][0]["name"] == "lookup_order"
    assert "tool_result" in str(second["messages"]) and "order A1: shipped" in str(second)


async def test_a_stream_falls_back_before_its_first_chunk(
    build: Build, mock_openai: MockOpenAIServer, mock_anthropic: MockAnthropicServer
) -> None:
    model = build().get("default")
    mock_openai.fail_next(529, times=3)
    mock_anthropic.enqueue_text("streamed by the backup")

    chunks = [chunk async for chunk in model.astream("hi")]

    assert [c.content for c in chunks if c.content] == ["streamed", " by", " the", " backup"]
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    assert chat_requests(mock_openai) == 3 and mock_anthropic.requests[0].stream


async def test_a_stream_cut_after_its_first_chunk_is_not_restarted(
    build: Build, mock_openai: MockOpenAIServer, mock_anthropic: MockAnthropicServer
) -> None:
    model = build().get("default")
    mock_openai.enqueue_text("one two three four five six")
    mock_openai.disconnect_next(after_events=3)

    seen: list[Any] = []
    with pytest.raises(ProviderUnavailableError, match="mid-stream"):
        async for chunk in model.astream("hi"):
            seen.append(chunk.content)
    assert "one" in "".join(seen)
    assert (chat_requests(mock_openai), chat_requests(mock_anthropic)) == (1, 0)


async def test_each_attempt_has_its_timeout(
    build: Build, mock_openai: MockOpenAIServer, mock_anthropic: MockAnthropicServer
) -> None:
    model = build({"retry": {**FAST_RETRY, "timeout_seconds": 0.3}}).get("default")
    mock_openai.slow_next(30)
    mock_openai.enqueue_text("second attempt")

    assert (await model.ainvoke("hi")).content == "second attempt"
    assert (chat_requests(mock_openai), chat_requests(mock_anthropic)) == (2, 0)


async def test_the_deadline_ends_the_retries(build: Build, mock_openai: MockOpenAIServer) -> None:
    retry = {**FAST_RETRY, "max_attempts": 10, "deadline_seconds": 0.5}
    model = build({"retry": retry, "fallbacks": []}).get("default")
    mock_openai.fail_next(429, times=10, retry_after=0.4)

    with pytest.raises(ProviderUnavailableError):
        await model.ainvoke("hi")
    assert chat_requests(mock_openai) == 2  # a third attempt would start past the deadline


def test_sync_calls_retry_and_fall_back_too(
    build: Build, mock_openai: MockOpenAIServer, mock_anthropic: MockAnthropicServer
) -> None:
    model = build({"breaker": None}).get("default")
    mock_openai.fail_next(503, times=3)

    assert model.invoke("sync call").content == "sync call"
    mock_openai.fail_next(503, times=3)
    assert "".join(str(c.content) for c in model.stream("sync stream")) == "sync stream"
    assert (chat_requests(mock_openai), chat_requests(mock_anthropic)) == (6, 2)


def test_the_sdk_does_not_retry_when_dockyard_does(build: Build) -> None:
    registry = build(backup={"retry": None, "max_retries": 4})
    assert registry.raw("default").max_retries == 0  # type: ignore[attr-defined]
    assert registry.raw("backup").max_retries == 4  # type: ignore[attr-defined]


def test_a_model_without_resilience_is_not_wrapped(build: Build) -> None:
    registry = build(backup={"retry": None})
    assert registry.get("backup") is registry.raw("backup")
    assert registry.get("default") is not registry.raw("default")


async def test_a_breaker_in_redis_is_open_for_every_registry(
    build: Build,
    mock_openai: MockOpenAIServer,
    mock_anthropic: MockAnthropicServer,
    tmp_path: Path,
) -> None:
    with fresh_prefix() as prefix:
        shared = {"redis_url": REDIS_URL, "redis_prefix": prefix}
        primary = {"breaker": {"failures": 3, "cooldown_seconds": 600}}
        one, other = build(primary, **shared), build(primary, **shared)
        mock_openai.fail_next(429, times=3)

        await one.get("default").ainvoke("opens it")
        assert chat_requests(mock_openai) == 3

        reply = await other.get("default").ainvoke("from another process")
        assert reply.response_metadata["model_name"] == "claude-backup"
        assert chat_requests(mock_openai) == 3

        store = model_wrap(load_settings(tmp_path / "dockyard.yaml")).resilience.store
        assert isinstance(store, RedisBreakerStore) and store.prefix == prefix


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        ({"default": {"model": "fake:a", "fallbacks": ["nope"]}}, "no model named 'nope'"),
        ({"default": {"model": "fake:a", "fallbacks": ["default"]}}, "fall back to itself"),
        (
            {"default": {"model": "fake:a", "retry": {"max_attempts": 2}, "max_retries": 3}},
            "not both",
        ),
        ({"default": {"model": "fake:a", "retry": {"attempts": 2}}}, "retry.attempts"),
        ({"default": {"model": "fake:a", "breaker": {"failures": 0}}}, "breaker.failures"),
        (
            {
                "default": {
                    "model": "fake:a",
                    "retry": {"backoff_min_seconds": 9, "backoff_max_seconds": 1},
                }
            },
            "backoff_min_seconds must not exceed",
        ),
    ],
)
def test_bad_resilience_settings_stop_start_up(
    tmp_path: Path, models: dict[str, Any], expected: str
) -> None:
    path = tmp_path / "dockyard.yaml"
    path.write_text(yaml.safe_dump({"models": models}))
    with pytest.raises(ConfigError, match=expected):
        load_settings(path)


def test_the_environment_sets_them_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "dockyard.yaml"
    path.write_text(yaml.safe_dump({"models": {"default": {"model": "fake:a"}}}))
    monkeypatch.setenv("DOCKYARD_MODELS__DEFAULT__RETRY__MAX_ATTEMPTS", "5")
    monkeypatch.setenv("DOCKYARD_MODELS__DEFAULT__BREAKER__COOLDOWN_SECONDS", "12.5")

    spec = load_settings(path).models["default"]

    assert spec.retry is not None and spec.retry.max_attempts == 5
    assert spec.breaker is not None and spec.breaker.cooldown_seconds == 12.5
    assert spec.sdk_max_retries == 0
