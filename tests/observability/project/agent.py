"""A support agent that looks a customer up with a tool and logs what it does (both with
the stdlib and with structlog), for the log and trace tests. Offline: a fake model."""

from __future__ import annotations

import logging

import structlog
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from dockyard.providers.offline.base import FakeChatModelBase, ToolSpec

log = logging.getLogger("support_agent")


class SupportModel(FakeChatModelBase):
    def _reply(self, messages: list[BaseMessage], tools: list[ToolSpec]) -> AIMessage:
        if isinstance(messages[-1], ToolMessage):
            return AIMessage(content=f"Account: {messages[-1].text}.")
        asked = next(m.text for m in reversed(messages) if isinstance(m, HumanMessage))
        call = {"name": "lookup", "args": {"customer": asked}, "id": "call-1"}
        return AIMessage(content="Looking it up.", tool_calls=[call])


@tool
def lookup(customer: str) -> str:
    """Look a customer's account up."""
    log.warning("looking up %s", customer)
    structlog.get_logger("support_agent").info("lookup", customer=customer)
    if "fail" in customer:
        raise ValueError(f"no account for {customer}")
    return "found"


graph = create_agent(SupportModel(), tools=[lookup])
