"""A customer-support agent: order lookup, an FAQ, and refunds a human must approve.

Serve it with ``graphs: {support: dockyard.agents.support:graph}`` (see
``examples/support``). It is LangChain's ``create_agent`` with three tools:

* ``lookup_order(order_id)``: the order's status, items, total and tracking;
* ``search_faq(query)``: answers from a small built-in FAQ;
* ``issue_refund(order_id, amount, reason)``: moves money, so
  ``HumanInTheLoopMiddleware`` pauses the run before it executes. The interrupt's value
  is a ``HITLRequest`` (``{"action_requests": [{"name", "args", "description"}],
  "review_configs": [...]}``); resume with ``Command(resume={"decisions": [d]})`` where
  ``d`` is ``{"type": "approve"}``, ``{"type": "reject", "message": "..."}`` or
  ``{"type": "edit", "edited_action": {"name": "issue_refund", "args": {...}}}``.

The agent runs on ``chat_model("default")``: the served project's ``models.default``,
else ``anthropic:claude-sonnet-4-6`` when an Anthropic key is set, else
``openai:gpt-4o-mini`` when an OpenAI key is set, else ``offline:support``, an offline
rule-based model, so the agent works with no key at all. The choice is the server's
(``dockyard.providers.registry``), made for each run; importing the graph reads no settings.
"""

from __future__ import annotations

import json
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware, InterruptOnConfig
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import ToolCall
from langchain_core.tools import tool
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from dockyard.providers import load_chat_model
from dockyard.providers.offline.support import SUPPORT_AGENT_RULES, SupportOfflineModel
from dockyard.providers.offline.support_data import (
    CURRENCY,
    find_order,
    normalize_order_id,
    refund,
    search_faq_entries,
)
from dockyard.providers.registry import DEFAULT, OFFLINE_DEFAULT, ModelRegistry, chat_model
from dockyard.settings import Settings

__all__ = [
    "OFFLINE_MODEL",
    "SUPPORT_AGENT_RULES",
    "SYSTEM_PROMPT",
    "SupportOfflineModel",
    "graph",
    "issue_refund",
    "lookup_order",
    "make_graph",
    "make_model",
    "search_faq",
]

OFFLINE_MODEL = OFFLINE_DEFAULT
"""The model spec used when no model is configured and no provider key is set."""

SYSTEM_PROMPT = f"""\
You are the customer-support agent of Harbor & Co., an online outfitter.
- For anything about a specific order, call lookup_order with the order id first.
- For general questions (shipping, returns, refunds, cancellations, warranty,
  payment), call search_faq and answer from what it returns.
- To refund, call issue_refund with the order id, the amount in {CURRENCY} (at most the
  order total) and a short reason. A team member reviews every refund before it runs;
  if they reject it, tell the customer plainly that no refund was issued.
- Never invent order details or policies. Be brief and friendly."""


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order by its id (like A1001): status, items, total, tracking, dates."""
    order = find_order(order_id)
    if order is None:
        oid = normalize_order_id(order_id)
        return json.dumps({"order_id": oid, "error": f"there is no order {oid!r}"})
    return json.dumps(order)


@tool
def search_faq(query: str) -> str:
    """Search the help-center FAQ (shipping, returns, refunds, cancellations, warranty,
    payment) and return the best matching answers."""
    hits = search_faq_entries(query)
    if not hits:
        return "The FAQ has nothing on that; offer to look up the customer's order instead."
    return " ".join(answer for _, answer in hits)


@tool
def issue_refund(order_id: str, amount: float, reason: str) -> str:
    """Refund `amount` (in the order's currency) on an order, for `reason`.

    Moves money: a human approves every call before it runs."""
    return json.dumps(refund(order_id, amount, reason))


def _refund_review_text(tool_call: ToolCall, state: Any, runtime: Runtime[Any]) -> str:
    args = tool_call["args"]
    order = find_order(str(args.get("order_id", "")))
    total = f"order total {order['total']:.2f} {CURRENCY}" if order else "unknown order"
    amount = args.get("amount")
    shown = f"{amount:.2f}" if isinstance(amount, int | float) else repr(amount)
    return (
        f"Refund {shown} {CURRENCY} on order {args.get('order_id')} ({total}); "
        f"reason: {args.get('reason') or 'none given'}. Approve, edit the amount, or reject."
    )


REFUND_REVIEW: InterruptOnConfig = {
    "allowed_decisions": ["approve", "edit", "reject"],
    "description": _refund_review_text,
}


def make_model(settings: Settings | None = None) -> BaseChatModel:
    """The chat model the agent runs on: ``chat_model("default")``, resolved for each run
    (see the module docstring), or with ``settings`` the ``default`` model they give."""
    if settings is None:
        return chat_model(DEFAULT)
    return ModelRegistry(settings.models, settings.project_dir).get(DEFAULT)


def make_graph(
    settings: Settings | None = None, *, model: BaseChatModel | str | None = None
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Build the support agent.

    ``model`` (a ``"provider:model"`` string or a chat model) overrides
    ``chat_model("default")``, as ``settings`` (their ``models.default``) do.
    """
    if isinstance(model, str):
        model = load_chat_model(model)
    return create_agent(
        model if model is not None else make_model(settings),
        tools=[lookup_order, search_faq, issue_refund],
        system_prompt=SYSTEM_PROMPT,
        middleware=[HumanInTheLoopMiddleware(interrupt_on={"issue_refund": REFUND_REVIEW})],
        name="support",
    )


graph = make_graph()
"""The agent on ``chat_model("default")``; what ``examples/support`` serves."""
