from __future__ import annotations

import time
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from pydantic import ValidationError

from dockyard.testing import ScriptedChatModel, ScriptExhaustedError


def order_call(order_id: str = "A1", call_id: str = "call_1") -> AIMessage:
    return AIMessage(
        "", tool_calls=[{"name": "lookup_order", "args": {"order_id": order_id}, "id": call_id}]
    )


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order by id."""
    return f"order {order_id}: shipped"


def test_replies_in_order_with_ids_usage_and_metadata() -> None:
    model = ScriptedChatModel(responses=["first answer", "second"], model_name="script-1")

    first = model.invoke("hello there")
    second = model.invoke("again")

    assert (first.content, second.content) == ("first answer", "second")
    assert first.id and second.id and first.id != second.id
    assert first.usage_metadata == {"input_tokens": 2, "output_tokens": 2, "total_tokens": 4}
    assert first.response_metadata["model_name"] == "script-1"
    assert first.response_metadata["finish_reason"] == "stop"


def test_exhausted_script_raises_a_clear_error() -> None:
    model = ScriptedChatModel(responses=["only one"])
    model.invoke("hi")

    with pytest.raises(ScriptExhaustedError, match=r"called 2 times .* only 1 .*cycle=True"):
        model.invoke("and again")


def test_cycle_starts_over() -> None:
    model = ScriptedChatModel(responses=["a", "b"], cycle=True)

    assert [model.invoke("x").content for _ in range(5)] == ["a", "b", "a", "b", "a"]


def test_callable_responses_see_the_prompt_and_calls_are_recorded() -> None:
    def shout(messages: list[BaseMessage]) -> str:
        return messages[-1].text.upper()

    model = ScriptedChatModel(responses=[shout])

    assert model.invoke("quiet please").content == "QUIET PLEASE"
    assert [[m.text for m in call] for call in model.calls] == [["quiet please"]]


def test_responses_are_checked() -> None:
    with pytest.raises(ValidationError, match="at least one response"):
        ScriptedChatModel(responses=[])
    with pytest.raises(ValidationError, match=r"responses\[1\] is a int"):
        ScriptedChatModel(responses=["ok", 42])


def test_stream_is_word_by_word_and_aggregates_to_the_reply() -> None:
    model = ScriptedChatModel(responses=["Your order has shipped."])

    chunks = list(model.stream("where is my order"))

    assert [c.content for c in chunks[:4]] == ["Your", " order", " has", " shipped."]
    assert len({c.id for c in chunks}) == 1 and chunks[0].id
    total = sum(chunks[1:], chunks[0])
    assert total.content == "Your order has shipped."
    assert total.usage_metadata == {"input_tokens": 4, "output_tokens": 4, "total_tokens": 8}
    assert total.response_metadata["model_name"] == "scripted"


def test_stream_sends_tool_calls_as_tool_call_chunks() -> None:
    model = ScriptedChatModel(responses=[order_call("B-22")])

    chunks = list(model.stream("where is B-22"))

    pieces = [tc for c in chunks for tc in c.tool_call_chunks]
    assert pieces[0]["name"] == "lookup_order" and pieces[0]["id"] == "call_1"
    assert len(pieces) > 2  # name first, then the arguments in several pieces
    total = sum(chunks[1:], chunks[0])
    assert isinstance(total, AIMessageChunk)
    assert total.tool_calls == [
        {"name": "lookup_order", "args": {"order_id": "B-22"}, "id": "call_1", "type": "tool_call"}
    ]
    assert total.response_metadata["finish_reason"] == "tool_calls"


async def test_async_paths_honour_latency() -> None:
    model = ScriptedChatModel(responses=["one two", "three"], latency=0.05)

    started = time.monotonic()
    reply = await model.ainvoke("hi")
    chunks = [chunk async for chunk in model.astream("hi")]

    assert time.monotonic() - started >= 0.1
    assert reply.content == "one two"
    assert "".join(str(c.content) for c in chunks) == "three"


def test_create_agent_runs_the_tool_and_answers() -> None:
    model = ScriptedChatModel(responses=[order_call("A1"), "Order A1 has shipped."])
    agent = create_agent(model, [lookup_order])

    result = agent.invoke({"messages": [HumanMessage("Where is order A1?")]})

    kinds = [type(m).__name__ for m in result["messages"]]
    assert kinds == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert result["messages"][2].content == "order A1: shipped"
    assert result["messages"][-1].content == "Order A1 has shipped."
    # The second call saw the tool result, and tools were bound on both calls.
    assert model.calls[1][-1].content == "order A1: shipped"


async def test_create_agent_streams_messages_token_by_token() -> None:
    model = ScriptedChatModel(responses=[order_call("A1"), "It shipped yesterday."])
    agent = create_agent(model, [lookup_order])

    streamed: list[tuple[Any, dict[str, Any]]] = [
        item
        async for item in agent.astream(
            {"messages": [HumanMessage("Where is order A1?")]}, stream_mode="messages"
        )
    ]

    model_chunks = [m for m, meta in streamed if isinstance(m, AIMessageChunk)]
    assert all(chunk.id for chunk in model_chunks)
    assert any(tc["name"] == "lookup_order" for c in model_chunks for tc in c.tool_call_chunks)
    text = [c.content for c in model_chunks if c.content]
    assert text == ["It", " shipped", " yesterday."]
    assert any(type(m).__name__ == "ToolMessage" for m, _ in streamed)


async def test_langgraph_graph_with_prebuilt_tool_node_streams_messages() -> None:
    model = ScriptedChatModel(responses=[order_call("C3"), "C3 is on its way."], cycle=True)
    bound = model.bind_tools([lookup_order])

    async def call_model(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [await bound.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("model", call_model)
    builder.add_node("tools", ToolNode([lookup_order]))
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", tools_condition)
    builder.add_edge("tools", "model")
    graph = builder.compile()

    tokens = [
        (chunk.content, meta["langgraph_node"])
        async for chunk, meta in graph.astream(
            {"messages": [HumanMessage("where is C3")]}, stream_mode="messages"
        )
        if isinstance(chunk, AIMessageChunk) and chunk.content
    ]
    final = await graph.ainvoke({"messages": [HumanMessage("where is C3")]})

    assert tokens == [
        ("C3", "model"),
        (" is", "model"),
        (" on", "model"),
        (" its", "model"),
        (" way.", "model"),
    ]
    assert final["messages"][-1].content == "C3 is on its way."
