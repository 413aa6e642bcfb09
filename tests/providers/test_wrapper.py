"""WrappedChatModel: every way a model is called goes through its layers, and the model
still behaves as the provider's (streaming, tools, structured output, run settings)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from pydantic import BaseModel

from dockyard.providers import load_chat_model
from dockyard.providers.offline.models import ScriptedChatModel
from dockyard.providers.registry import ModelRegistry, chat_model
from dockyard.providers.wrapper import (
    AsyncNext,
    AsyncStreamNext,
    ModelCall,
    ModelLayer,
    SyncNext,
    SyncStreamNext,
    WrappedChatModel,
    unwrap,
    wrap_model,
)
from dockyard.sampling import ModelParamsError
from dockyard.testing import MockAnthropicServer, MockOpenAIServer, MockProviderServer


class Recorder(ModelLayer):
    """Notes each call and the path it took; tags streamed chunks."""

    def __init__(self, label: str = "rec") -> None:
        self.label = label
        self.calls: list[tuple[str, ModelCall]] = []

    async def agenerate(self, call: ModelCall, call_next: AsyncNext) -> ChatResult:
        self.calls.append(("agenerate", call))
        return await call_next(call)

    def generate(self, call: ModelCall, call_next: SyncNext) -> ChatResult:
        self.calls.append(("generate", call))
        return call_next(call)

    async def astream(
        self, call: ModelCall, call_next: AsyncStreamNext
    ) -> AsyncIterator[ChatGenerationChunk]:
        self.calls.append(("astream", call))
        async for chunk in call_next(call):
            yield chunk

    def stream(self, call: ModelCall, call_next: SyncStreamNext) -> Iterator[ChatGenerationChunk]:
        self.calls.append(("stream", call))
        yield from call_next(call)

    @property
    def paths(self) -> list[str]:
        return [path for path, _ in self.calls]


class Answering(ModelLayer):
    """Answers every call itself: the provider is never reached."""

    async def agenerate(self, call: ModelCall, call_next: AsyncNext) -> ChatResult:
        from langchain_core.outputs import ChatGeneration

        return ChatResult(generations=[ChatGeneration(message=AIMessage("from the layer"))])


class Order(BaseModel):
    """An order and where it is."""

    order_id: str
    status: str


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order by id."""
    return f"order {order_id}: shipped"


def scripted(*responses: Any) -> ScriptedChatModel:
    return ScriptedChatModel(responses=list(responses), cycle=True)


def test_invoke_and_stream_pass_the_layers_in_order() -> None:
    first, second = Recorder("first"), Recorder("second")
    model = wrap_model(scripted("hello there"), [first, second], name="default")

    assert model.invoke("hi").content == "hello there"
    chunks = list(model.stream("hi"))

    assert "".join(str(c.content) for c in chunks) == "hello there"
    assert first.paths == second.paths == ["generate", "stream"]
    assert first.calls[0][1].name == "default"
    assert first.calls[0][1].messages[0].content == "hi"


async def test_async_paths_and_callbacks_see_one_model_call() -> None:
    rec = Recorder()
    model = wrap_model(scripted("one two three"), [rec], name="fast")

    reply = await model.ainvoke("hi")
    events = [e async for e in model.astream_events("hi", version="v2")]

    assert reply.content == "one two three"
    kinds = [e["event"] for e in events]
    assert kinds.count("on_chat_model_start") == 1 and kinds.count("on_chat_model_end") == 1
    tokens = [e["data"]["chunk"].content for e in events if e["event"] == "on_chat_model_stream"]
    assert "".join(tokens) == "one two three" and len([t for t in tokens if t]) == 3
    assert rec.paths == ["agenerate", "astream"]


async def test_a_layer_may_answer_without_the_provider() -> None:
    inner = scripted("from the provider")
    model = wrap_model(inner, [Answering()], name="default")

    assert (await model.ainvoke("hi")).content == "from the layer"
    assert inner.calls == []


async def test_bind_tools_keeps_calls_in_the_wrapper() -> None:
    rec = Recorder()
    call = {"name": "lookup_order", "args": {"order_id": "A1"}, "id": "call_1"}
    model = wrap_model(scripted(AIMessage("", tool_calls=[call])), [rec], name="default")

    reply = await model.bind_tools([lookup_order], tool_choice="any").ainvoke("where is A1?")

    assert reply.tool_calls[0]["args"] == {"order_id": "A1"}
    [(_, seen)] = rec.calls
    assert seen.tools is not None and seen.kwargs["tool_choice"] == "any"
    assert seen.kwargs["tools"][0]["function"]["name"] == "lookup_order"


async def test_with_structured_output_goes_through_the_wrapper() -> None:
    rec = Recorder()
    call = {"name": "Order", "args": {"order_id": "A1", "status": "shipped"}, "id": "c1"}
    model = wrap_model(scripted(AIMessage("", tool_calls=[call])), [rec], name="default")

    order = await model.with_structured_output(Order).ainvoke("where is A1?")
    raw = await model.with_structured_output(Order, include_raw=True).ainvoke("again")

    assert order == Order(order_id="A1", status="shipped")
    assert raw["parsed"] == order and isinstance(raw["raw"], AIMessage)
    assert rec.paths == ["agenerate", "agenerate"]


def test_structured_output_is_tool_calling_whatever_the_provider() -> None:
    model = wrap_model(scripted("x"), [Recorder()], name="default")

    model.with_structured_output(Order, method="function_calling")
    with pytest.raises(ValueError, match=r"method=.json_schema.*models\.default"):
        model.with_structured_output(Order, method="json_schema")


def test_the_wrapper_looks_like_its_model() -> None:
    inner = scripted("x")
    model = wrap_model(inner, [Recorder()], name="default")

    assert model._llm_type == inner._llm_type
    assert model._identifying_params == inner._identifying_params
    assert unwrap(model) is inner and unwrap(inner) is inner
    again = wrap_model(model, [Recorder("outer")], name="default")
    assert isinstance(again, WrappedChatModel) and again.inner is inner
    assert [getattr(layer, "label", None) for layer in again.layers] == ["outer", "rec"]


async def test_run_settings_reach_the_provider_through_the_wrapper() -> None:
    inner = load_chat_model("fake:echo")
    model = wrap_model(inner, [Recorder()], name="default")
    config: Any = {"configurable": {"model_params": {"max_tokens": 2}}}

    reply = await model.ainvoke("one two three four", config)

    assert reply.content == "one two"
    with pytest.raises(ModelParamsError):
        await model.ainvoke("x", {"configurable": {"model_params": {"top_p": 7}}})


async def test_a_graph_on_chat_model_streams_through_the_registry_wrap() -> None:
    rec = Recorder()

    def wrap(name: str, model: BaseChatModel, registry: ModelRegistry) -> BaseChatModel:
        return wrap_model(model, [rec], name=name)

    registry = ModelRegistry({"default": scripted("streamed to the graph")}, wrap=wrap)
    model = chat_model("default")

    async def answer(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("answer", answer)
    graph.add_edge(START, "answer")
    compiled = graph.compile()

    parts = [
        part
        async for part in compiled.astream(
            {"messages": [("user", "hi")]}, registry.run_config(), stream_mode="messages"
        )
    ]

    tokens = [chunk.content for chunk, _ in parts if isinstance(chunk, AIMessageChunk)]
    assert "".join(tokens) == "streamed to the graph" and len([t for t in tokens if t]) > 1
    assert rec.paths == ["astream"]
    assert registry.raw("default") is unwrap(registry.get("default"))
    assert isinstance(registry.get("default"), WrappedChatModel)


# -- the provider models over HTTP -----------------------------------------------------


@pytest.fixture(params=["anthropic", "openai"])
def server(
    request: pytest.FixtureRequest,
    mock_anthropic: MockAnthropicServer,
    mock_openai: MockOpenAIServer,
) -> MockProviderServer:
    return mock_anthropic if request.param == "anthropic" else mock_openai


def provider_model(server: MockProviderServer) -> BaseChatModel:
    spec = "anthropic:claude-test" if isinstance(server, MockAnthropicServer) else "openai:gpt-t"
    return load_chat_model(spec, base_url=server.base_url, api_key="test-key", max_retries=0)


async def test_provider_streaming_tools_and_structured_output(server: MockProviderServer) -> None:
    rec = Recorder()
    model = wrap_model(provider_model(server), [rec], name="default")

    server.enqueue_text("It shipped yesterday.")
    chunks = [chunk async for chunk in model.astream("Where is my order?")]
    assert [c.content for c in chunks if c.content] == ["It", " shipped", " yesterday."]
    total = sum(chunks[1:], chunks[0])
    assert isinstance(total, AIMessageChunk) and total.usage_metadata is not None
    assert server.requests[-1].stream

    server.enqueue_tool_call("lookup_order", {"order_id": "A1"}, call_id="call_9")
    reply = await model.bind_tools([lookup_order]).ainvoke("Where is A1?")
    assert reply.tool_calls[0]["args"] == {"order_id": "A1"}
    assert "lookup_order" in str(server.requests[-1].body["tools"])

    server.enqueue_tool_call("Order", {"order_id": "A1", "status": "shipped"})
    order = await model.with_structured_output(Order).ainvoke("Where is A1?")
    assert order == Order(order_id="A1", status="shipped")

    server.enqueue_text("sync too")
    assert model.invoke("hi").content == "sync too"
    assert rec.paths == ["astream", "agenerate", "agenerate", "generate"]
