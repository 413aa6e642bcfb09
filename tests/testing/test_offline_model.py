from __future__ import annotations

import json
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_core.tools import tool

from dockyard.testing import SUPPORT_RULES, OfflineChatModel, OfflineRule


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order by id."""
    return json.dumps({"order_id": order_id, "status": "shipped"})


@tool
def search_knowledge_base(query: str) -> str:
    """Search the help center."""
    return "Refunds are possible within 30 days."


@tool
def create_ticket(summary: str) -> str:
    """Hand the conversation to a human."""
    return "ticket T-1 created"


def support_agent() -> Any:
    model = OfflineChatModel(rules=SUPPORT_RULES)
    return create_agent(model, [lookup_order, search_knowledge_base, create_ticket])


async def test_support_agent_looks_up_an_order_and_reports_it() -> None:
    agent = support_agent()

    result = await agent.ainvoke({"messages": [HumanMessage("Where is my order a1-77?")]})

    call = result["messages"][1].tool_calls[0]
    assert (call["name"], call["args"]) == ("lookup_order", {"order_id": "A1-77"})
    answer = result["messages"][-1].content
    assert answer == "Here is what I found. lookup_order: order_id: A1-77, status: shipped"


async def test_rules_are_tried_in_order() -> None:
    agent = support_agent()

    refund = await agent.ainvoke({"messages": [HumanMessage("What is your refund policy?")]})
    question = "Let me talk to a human about order 123456"
    human = await agent.ainvoke({"messages": [HumanMessage(question)]})

    assert refund["messages"][1].tool_calls[0]["name"] == "search_knowledge_base"
    assert "30 days" in refund["messages"][-1].content
    assert human["messages"][1].tool_calls[0]["args"] == {"summary": question}


def test_rules_only_fire_for_bound_tools() -> None:
    model = OfflineChatModel(rules=SUPPORT_RULES).bind_tools([search_knowledge_base])

    reply = model.invoke("where is order A1?")

    assert reply.tool_calls == []
    assert reply.content == (
        "Thanks for your message. I can help with: search knowledge base. "
        "Could you tell me a bit more, for example your order number?"
    )


def test_without_tools_it_gives_a_templated_reply() -> None:
    reply = OfflineChatModel().invoke("hello")

    assert "offline" in str(reply.content)
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] > 0


def test_rules_accept_tuples_and_custom_arg_builders() -> None:
    model = OfflineChatModel(
        rules=[
            ("weather in (\\w+)", "get_weather", lambda m, _text: {"city": m.group(1).title()}),
            ("joke", "tell_joke"),
        ]
    )

    @tool
    def get_weather(city: str) -> str:
        """Weather for a city."""
        return "sunny"

    @tool
    def tell_joke(query: str) -> str:
        """A joke."""
        return "knock knock"

    bound = model.bind_tools([get_weather, tell_joke])

    assert isinstance(model.rules[0], OfflineRule)
    assert bound.invoke("Weather in PARIS please").tool_calls[0]["args"] == {"city": "Paris"}
    assert bound.invoke("tell me a JOKE").tool_calls[0]["args"] == {"query": "tell me a JOKE"}


def test_streams_tool_calls_like_the_scripted_model() -> None:
    model = OfflineChatModel(rules=SUPPORT_RULES).bind_tools([lookup_order])

    chunks = list(model.stream("order #A9 please"))

    assert all(isinstance(c, AIMessageChunk) and c.id == chunks[0].id for c in chunks)
    total = sum(chunks[1:], chunks[0])
    assert isinstance(total, AIMessageChunk)
    assert total.tool_calls[0]["args"] == {"order_id": "A9"}
