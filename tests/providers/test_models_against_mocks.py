"""load_chat_model's LangChain models, driven over HTTP against the mock providers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import anthropic
import openai
import pytest
from langchain.agents import create_agent
from langchain_anthropic import ChatAnthropic
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from dockyard.providers import load_chat_model
from dockyard.testing import MockAnthropicServer, MockOpenAIServer, MockProviderServer


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order by id."""
    return f"order {order_id}: shipped"


ModelFactory = Callable[..., BaseChatModel]


@pytest.fixture(params=["anthropic", "openai"])
def server(
    request: pytest.FixtureRequest,
    mock_anthropic: MockAnthropicServer,
    mock_openai: MockOpenAIServer,
) -> MockProviderServer:
    return mock_anthropic if request.param == "anthropic" else mock_openai


@pytest.fixture
async def model_for(server: MockProviderServer) -> AsyncIterator[ModelFactory]:
    """Builds models for ``server`` and closes their HTTP clients afterwards.

    The integrations cache HTTP clients per base_url; every test gets a new port, so
    without closing them the connections linger until garbage collection.
    """
    models: list[BaseChatModel] = []

    def build(**kwargs: Any) -> BaseChatModel:
        spec = (
            "anthropic:claude-test"
            if isinstance(server, MockAnthropicServer)
            else "openai:gpt-test"
        )
        model = load_chat_model(spec, base_url=server.base_url, api_key="test-key", **kwargs)
        models.append(model)
        return model

    yield build
    for model in models:
        clients = model.__dict__  # only clients that were created (cached_property)
        if isinstance(model, ChatAnthropic):
            if "_client" in clients:
                model._client.close()
            if "_async_client" in clients:
                await model._async_client.close()
        elif isinstance(model, ChatOpenAI):
            if model.root_client is not None:
                model.root_client.close()
            if model.root_async_client is not None:
                await model.root_async_client.close()


def test_invoke_reports_text_usage_and_model(
    server: MockProviderServer, model_for: ModelFactory
) -> None:
    server.enqueue_text("It shipped yesterday.")

    reply = model_for().invoke("Where is my order?")

    assert reply.content == "It shipped yesterday."
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["input_tokens"] == 4
    assert reply.usage_metadata["output_tokens"] == 3
    assert reply.response_metadata["model_name"] in ("claude-test", "gpt-test")
    assert server.requests[0].api_key == "test-key"


async def test_astream_yields_tokens_and_usage(
    server: MockProviderServer, model_for: ModelFactory
) -> None:
    server.enqueue_text("It shipped yesterday.")

    chunks = [chunk async for chunk in model_for().astream("Where is my order?")]

    assert [c.content for c in chunks if c.content] == ["It", " shipped", " yesterday."]
    total = sum(chunks[1:], chunks[0])
    assert isinstance(total, AIMessageChunk) and total.usage_metadata is not None
    assert total.usage_metadata["output_tokens"] == 3
    assert server.requests[0].stream


@pytest.mark.parametrize("streaming", [False, True])
async def test_tool_calls_are_parsed(
    server: MockProviderServer, model_for: ModelFactory, streaming: bool
) -> None:
    server.enqueue_tool_call("lookup_order", {"order_id": "A1"}, call_id="call_9")
    model = model_for().bind_tools([lookup_order])

    if streaming:
        chunks = [chunk async for chunk in model.astream("Where is A1?")]
        reply = sum(chunks[1:], chunks[0])
    else:
        reply = await model.ainvoke("Where is A1?")

    assert reply.tool_calls == [
        {"name": "lookup_order", "args": {"order_id": "A1"}, "id": "call_9", "type": "tool_call"}
    ]
    tools = server.requests[0].body["tools"]
    assert "lookup_order" in str(tools)


def test_sdk_retries_429_through_langchain(
    server: MockProviderServer, model_for: ModelFactory
) -> None:
    server.fail_next(429, times=2, retry_after=0.05)
    server.enqueue_text("made it")

    reply = model_for(max_retries=2).invoke("hi")

    assert reply.content == "made it"
    assert len(server.requests) == 3


def test_server_error_surfaces_when_retries_are_off(
    server: MockProviderServer, model_for: ModelFactory
) -> None:
    server.fail_next(529 if isinstance(server, MockAnthropicServer) else 500)
    expected = (
        anthropic.OverloadedError
        if isinstance(server, MockAnthropicServer)
        else openai.InternalServerError
    )

    with pytest.raises(expected):
        model_for(max_retries=0).invoke("hi")


async def test_create_agent_end_to_end(server: MockProviderServer, model_for: ModelFactory) -> None:
    server.enqueue_tool_call("lookup_order", {"order_id": "A1"})
    server.enqueue_text("Order A1 has shipped.")
    agent = create_agent(model_for(), [lookup_order])

    result = await agent.ainvoke({"messages": [HumanMessage("Where is order A1?")]})

    assert result["messages"][-1].content == "Order A1 has shipped."
    # The second request carried the tool's output back to the provider.
    assert "order A1: shipped" in str(server.requests[1].body["messages"])
