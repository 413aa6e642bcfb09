"""``"offline:support"``: the offline model of the sample support agent and of ``dockyard init``.

``SupportOfflineModel`` is an ``OfflineChatModel`` with rules for the support agent's
three tools, and with answers written for each tool's result (an issued refund, a
refund a reviewer rejected, an order record, FAQ entries) instead of the generic
"here is what I found" summary, so the demo reads like a support conversation. It also
follows ``SUPPORT_RULES`` (a ticket for a human, a generic order lookup, a knowledge-base
search), for the tools of ``dockyard init``'s agent; any other tool's result gets the
generic summary.
"""

from __future__ import annotations

import json
import re
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from pydantic import Field

from dockyard.providers.offline.models import SUPPORT_RULES, OfflineChatModel, OfflineRule
from dockyard.providers.offline.support_data import CURRENCY, find_order

_ORDER_REF = (
    r"(?:\border\b\s*(?:number|id|no\.?)?\s*[#:]?\s*(?P<o1>[a-z]{0,3}-?\d{3,8})\b"
    r"|(?<![\w-])#?(?P<o2>[a-z]{1,3}-?\d{3,8})\b)"
)
# A request to refund a named order, not a question about refunds in general.
_REFUND_REQUEST = re.compile(
    r"^(?!.*\b(?:policy|policies|how|when|status|where|long)\b)"
    r"(?=.*\brefund)(?=.*?" + _ORDER_REF + ")",
    re.I | re.S,
)
_ORDER_LOOKUP = re.compile(_ORDER_REF, re.I)
_FAQ_TOPIC = re.compile(
    r"\b(refund\w*|return\w*|ship\w*|deliver\w*|cancel\w*|warrant\w*|guarantee|"
    r"polic(?:y|ies)|exchange|pay\w*|address|how|when|can i|do you)\b",
    re.I,
)
_AMOUNT = re.compile(
    r"(?:[$€£]\s*(?P<a1>\d+(?:[.,]\d{1,2})?))"
    r"|(?<![\w.,-])(?P<a2>\d+(?:[.,]\d{1,2})?)(?!\w|[.,]\d)",
    re.I,
)
_REASON = re.compile(
    r"\b(?:because(?: of)?|reason\s*[:=]?|due to|since|as (?:it|they) (?:is|was|are|were))"
    r"\s+(?P<reason>.+?)[.!]?\s*$",
    re.I | re.S,
)


def _order_id(match: re.Match[str]) -> str:
    return (match.group("o1") or match.group("o2") or "").upper()


def _refund_args(match: re.Match[str], text: str) -> dict[str, Any]:
    order_id = _order_id(match)
    # The order id is letters + digits, so its digits never match as an amount.
    amount_match = _AMOUNT.search(text.replace(match.group("o1") or match.group("o2"), " "))
    if amount_match:
        raw = amount_match.group("a1") or amount_match.group("a2")
        amount = float(raw.replace(",", "."))
    else:
        order = find_order(order_id)
        amount = float(order["total"]) if order else 0.0
    reason_match = _REASON.search(text)
    if reason_match:
        reason = reason_match.group("reason").strip()
    else:
        # "refund order A1001, 20 EUR, damaged": the last clause is the reason.
        clauses = [c.strip(" .!") for c in re.split(r"[,;]", text)[1:]]
        words = [c for c in clauses if c and not _AMOUNT.fullmatch(c.split()[0])]
        reason = words[-1] if words else "requested by the customer"
    return {"order_id": order_id, "amount": amount, "reason": reason}


def _lookup_args(match: re.Match[str], _text: str) -> dict[str, Any]:
    return {"order_id": _order_id(match)}


def _faq_args(_match: re.Match[str], text: str) -> dict[str, Any]:
    return {"query": text}


SUPPORT_AGENT_RULES: tuple[OfflineRule, ...] = (
    OfflineRule(_REFUND_REQUEST, "issue_refund", _refund_args),
    OfflineRule(_ORDER_LOOKUP, "lookup_order", _lookup_args),
    OfflineRule(_FAQ_TOPIC, "search_faq", _faq_args),
)
"""First match wins: a refund request naming an order, any order id, an FAQ topic."""

# A rule fires only when its tool is bound, so the sample agent (issue_refund, lookup_order,
# search_faq) meets its own rules first and init's agent (create_ticket, lookup_order)
# meets the ticket rule first, as each did with a model of its own.
_TICKET = tuple(r for r in SUPPORT_RULES if r.tool == "create_ticket")
_ALL_RULES = (*_TICKET, *SUPPORT_AGENT_RULES, *(r for r in SUPPORT_RULES if r not in _TICKET))


class SupportOfflineModel(OfflineChatModel):
    """``"offline:support"``: the sample agent's rules and wording, and ``SUPPORT_RULES``."""

    rules: list[OfflineRule] = Field(default_factory=lambda: list(_ALL_RULES))
    model_name: str = "offline-support"

    def _reply(self, messages: list[BaseMessage], tools: list[dict[str, Any]]) -> AIMessage:
        results = _trailing_tool_messages(messages)
        if not results or not all(_worded(m) for m in results):
            return super()._reply(messages, tools)
        calls = _tool_call_args(messages)
        parts = [_describe_result(m, calls.get(m.tool_call_id, {})) for m in results]
        return AIMessage(content=" ".join(parts))


def _worded(message: ToolMessage) -> bool:
    """Is this the result of a sample-agent tool, which gets its own wording?"""
    if message.name in ("issue_refund", "search_faq"):
        return True
    # init's lookup_order answers in plain text; the sample agent's with a JSON record.
    return message.name == "lookup_order" and isinstance(_payload(message)[1], dict)


def _trailing_tool_messages(messages: list[BaseMessage]) -> list[ToolMessage]:
    results: list[ToolMessage] = []
    for message in reversed(messages):
        if not isinstance(message, ToolMessage):
            break
        results.append(message)
    return list(reversed(results))


def _tool_call_args(messages: list[BaseMessage]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for message in messages:
        if isinstance(message, AIMessage):
            for call in message.tool_calls:
                if call.get("id"):
                    out[str(call["id"])] = dict(call["args"])
    return out


def _payload(message: ToolMessage) -> tuple[str, Any, bool]:
    """The tool's own output (without a reviewer-edit notice), parsed if JSON; edited?"""
    text = str(message.text)
    edited = text.startswith("Note: a human reviewer replaced this tool call")
    if edited and "Tool response:" in text:
        text = text.split("Tool response:", 1)[1].strip()
    try:
        return text, json.loads(text), edited
    except ValueError:
        return text, None, edited


def _describe_result(message: ToolMessage, args: dict[str, Any]) -> str:
    text, data, edited = _payload(message)
    if message.name == "issue_refund":
        return _describe_refund(message, text, data, args, edited)
    if message.name == "lookup_order" and isinstance(data, dict):
        return _describe_order(data)
    if message.name == "search_faq":
        return text
    return f"{message.name or 'The tool'} returned: {text}"


def _describe_refund(
    message: ToolMessage, text: str, data: Any, args: dict[str, Any], edited: bool
) -> str:
    order = args.get("order_id", "your order")
    if message.status == "error" and data is None:
        # No result from the tool: a reviewer rejected the call, or it failed.
        if text.startswith("User rejected"):
            reason = text.split("with reason:", 1)[1].strip() if "with reason:" in text else ""
            because = f" ({reason})" if reason else ""
            return (
                f"The refund for order {order} was not issued: our team declined it"
                f"{because}. No money has been moved. Is there anything else I can do?"
            )
        return f"The refund for order {order} was not issued: {text}"
    if isinstance(data, dict) and data.get("status") == "issued":
        note = " (a team member adjusted the request before approving it)" if edited else ""
        return (
            f"Your refund of {data['amount']:.2f} {data.get('currency', CURRENCY)} for order "
            f"{data['order_id']} has been issued{note}, refund id {data['refund_id']}. It "
            f"arrives in {data.get('arrives_in', '3-5 business days')}."
        )
    if isinstance(data, dict):
        return f"The refund for order {order} was not issued: {data.get('error', text)}."
    return f"The refund for order {order}: {text}"


def _describe_order(order: dict[str, Any]) -> str:
    if "error" in order:
        return f"I could not find that order: {order['error']}. Could you check the number?"
    items = ", ".join(f"{i['quantity']} x {i['name']}" for i in order.get("items", []))
    head = (
        f"Order {order['order_id']} ({items}; {order['total']:.2f} {order['currency']}) "
        f"is {order['status']}"
    )
    if order["status"] == "shipped":
        return (
            f"{head}: it left with {order['carrier']} (tracking {order['tracking_number']}) "
            f"and should arrive by {order['expected_delivery']}."
        )
    if order["status"] == "delivered":
        return f"{head}: it was delivered on {order['delivered_on']}."
    return f"{head}: it should ship by {order['expected_ship_date']}."
