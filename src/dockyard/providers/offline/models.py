"""Chat models that need no network and no API key, for tests and offline demos.

``ScriptedChatModel`` replays answers you write down; ``OfflineChatModel`` follows a
handful of regex rules, enough to drive a sample support agent end to end. Both are
real ``BaseChatModel``s: they bind tools, stream token by token (tool-call chunks
included), report usage and carry message ids, so ``create_agent``, LangGraph's
``messages`` stream mode and dockyard's /v1 route (usage, ``finish_reason``) treat them
like a provider's model.
"""

from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from pydantic import PrivateAttr, SkipValidation, field_validator

from dockyard.providers.offline.base import FakeChatModelBase, ToolSpec, tool_name

ScriptedResponse: TypeAlias = str | AIMessage | Callable[[list[BaseMessage]], AIMessage | str]
"""A text reply, a full ``AIMessage`` (tool calls allowed), or a function of the prompt."""

ArgsBuilder: TypeAlias = Callable[["re.Match[str]", str], dict[str, Any]]
"""Builds tool arguments from the rule's match and the whole human message."""


class ScriptExhaustedError(RuntimeError):
    """A ``ScriptedChatModel`` was called more times than it has responses."""


class ScriptedChatModel(FakeChatModelBase):
    """Replies with ``responses`` in order, one per model call.

    Example::

        model = ScriptedChatModel(responses=[
            AIMessage("", tool_calls=[{"name": "lookup_order", "args": {"order_id": "A1"},
                                        "id": "call_1"}]),
            "Your order A1 has shipped.",
        ])

    When the script runs out the model raises ``ScriptExhaustedError``, or starts over
    with ``cycle=True``. ``calls`` keeps the prompt of every call for assertions.
    """

    # Validated by hand: pydantic would try to coerce a callable into an AIMessage.
    responses: SkipValidation[list[ScriptedResponse]]
    cycle: bool = False
    model_name: str = "scripted"

    _position: int = PrivateAttr(default=0)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _calls: list[list[BaseMessage]] = PrivateAttr(default_factory=list)

    @field_validator("responses", mode="before")
    @classmethod
    def _check_responses(cls, value: Sequence[ScriptedResponse]) -> list[ScriptedResponse]:
        if isinstance(value, str | AIMessage) or not isinstance(value, Sequence):
            raise ValueError("responses must be a list of str, AIMessage or callables")
        if not value:
            raise ValueError("ScriptedChatModel needs at least one response")
        for index, item in enumerate(value):
            if not (isinstance(item, str | AIMessage) or callable(item)):
                raise ValueError(
                    f"responses[{index}] is a {type(item).__name__}; "
                    "expected str, AIMessage or a callable"
                )
        return list(value)

    @property
    def _llm_type(self) -> str:
        return "dockyard-scripted"

    @property
    def calls(self) -> list[list[BaseMessage]]:
        """The messages each call received, oldest first."""
        with self._lock:
            return [list(prompt) for prompt in self._calls]

    def _reply(self, messages: list[BaseMessage], tools: list[ToolSpec]) -> AIMessage:
        with self._lock:
            position = self._position
            if position >= len(self.responses) and not self.cycle:
                raise ScriptExhaustedError(
                    f"ScriptedChatModel was called {position + 1} times but scripts only "
                    f"{len(self.responses)} responses; add responses or pass cycle=True. "
                    f"Last message of this call: {last_human_text(messages)!r}"
                )
            self._position += 1
            self._calls.append(list(messages))
        response = self.responses[position % len(self.responses)]
        if callable(response):
            response = response(list(messages))
        if isinstance(response, str):
            return AIMessage(content=response)
        if isinstance(response, AIMessage):
            return response
        raise TypeError(
            f"scripted response #{position} produced {type(response).__name__}; "
            "expected str or AIMessage"
        )


class OfflineRule:
    """When the last human message matches ``pattern``, call ``tool`` (if it is bound).

    ``pattern`` is a regex (a plain keyword is a regex too), matched case-insensitively
    unless it is already compiled. ``args`` builds the tool arguments from the match and
    the message; without it the arguments are ``{"query": <message>}``.
    """

    __slots__ = ("args", "pattern", "tool")

    def __init__(
        self, pattern: str | re.Pattern[str], tool: str, args: ArgsBuilder | None = None
    ) -> None:
        self.pattern = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern, re.I)
        self.tool = tool
        self.args = args

    def build_args(self, match: re.Match[str], text: str) -> dict[str, Any]:
        return self.args(match, text) if self.args else {"query": text}

    def __repr__(self) -> str:
        return f"OfflineRule({self.pattern.pattern!r}, {self.tool!r})"


RuleLike: TypeAlias = (
    OfflineRule | tuple[str | re.Pattern[str], str] | tuple[str | re.Pattern[str], str, ArgsBuilder]
)

SUPPORT_RULES: tuple[OfflineRule, ...] = (
    OfflineRule(
        r"\b(human|person|agent|escalate|complain\w*|speak to|talk to)\b",
        "create_ticket",
        lambda _match, text: {"summary": text},
    ),
    OfflineRule(
        r"\border\b\s*(?:number|id|no\.?)?\s*[#:]?\s*([a-z0-9][a-z0-9-]*\d[a-z0-9-]*)",
        "lookup_order",
        lambda match, _text: {"order_id": match.group(1).upper()},
    ),
    OfflineRule(
        r"\b(refund|return|cancel\w*|shipping|deliver\w*|warranty|policy|how (do|can) i)\b",
        "search_knowledge_base",
        lambda _match, text: {"query": text},
    ),
)
"""Rules for a generic support agent: escalate to a ticket, look up an order id, else search
the knowledge base. Each fires only when a tool of that name is bound. ``"offline:support"``
follows them too, beside the sample support agent's own rules."""


class OfflineChatModel(FakeChatModelBase):
    """A deterministic, rule-based model that runs a simple tool-using agent offline.

    On each call it looks at the conversation's last message:

    * a ``ToolMessage`` (a tool just answered): reply with a short text that reports the
      tool results;
    * a human message matching a rule whose tool is bound: call that tool;
    * anything else: a polite templated reply that says what the bound tools can do.
    """

    rules: list[OfflineRule] = []
    model_name: str = "offline"

    @field_validator("rules", mode="before")
    @classmethod
    def _coerce_rules(cls, value: Sequence[RuleLike]) -> list[OfflineRule]:
        return [rule if isinstance(rule, OfflineRule) else OfflineRule(*rule) for rule in value]

    @property
    def _llm_type(self) -> str:
        return "dockyard-offline"

    def _reply(self, messages: list[BaseMessage], tools: list[ToolSpec]) -> AIMessage:
        if messages and isinstance(messages[-1], ToolMessage):
            return AIMessage(content=_summarize_tool_results(messages))
        text = last_human_text(messages)
        if not tools and _SUMMARY_REQUEST in text:
            return AIMessage(content=_extractive_summary(text))
        bound = {tool_name(tool) for tool in tools}
        for rule in self.rules:
            if rule.tool not in bound:
                continue
            match = rule.pattern.search(text)
            if match:
                call = {"name": rule.tool, "args": rule.build_args(match, text), "id": None}
                return AIMessage(content="", tool_calls=[call])
        return AIMessage(content=_templated_reply(tools))


# What LangChain's SummarizationMiddleware asks (policies.summarization): an offline model
# answers with the user's own lines instead of a canned reply, so no context is lost.
_SUMMARY_REQUEST = "Messages to summarize:"
_SUMMARY_LINES = 20
_SUMMARY_PREFIX = "Here is a summary of the conversation to date:"
_HUMAN_XML = re.compile(r'<message type="human">(.*?)</message>', re.S)


def _extractive_summary(prompt: str) -> str:
    history = prompt.split(_SUMMARY_REQUEST, 1)[1]
    # LangChain renders the messages as XML (get_buffer_string(format="xml")).
    said: list[str] = []
    for raw in _HUMAN_XML.findall(history):
        text = html.unescape(raw).strip()
        if text.startswith(_SUMMARY_PREFIX):
            # An earlier summary: its lines carry over, not the summary as one line.
            said.extend(line[2:] for line in text.splitlines() if line.startswith("- "))
        elif text:
            said.append(" ".join(text.split()))
    if not said:
        return "## SUMMARY\nNone"
    kept = said[-_SUMMARY_LINES:]
    lines = "\n".join(f"- {_describe(line, 200)}" for line in kept)
    return f"## SUMMARY\nThe user said:\n{lines}"


def last_human_text(messages: list[BaseMessage]) -> str:
    """The text of the last human message (of the last message when there is none)."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return message.text
    return messages[-1].text if messages else ""


def _summarize_tool_results(messages: list[BaseMessage]) -> str:
    results: list[ToolMessage] = []
    for message in reversed(messages):
        if not isinstance(message, ToolMessage):
            break
        results.append(message)
    parts = [f"{m.name or 'the tool'}: {_describe(m.text)}" for m in reversed(results)]
    return "Here is what I found. " + "; ".join(parts)


def _describe(content: str, limit: int = 300) -> str:
    try:
        data = json.loads(content)
    except ValueError:
        data = None
    if isinstance(data, dict):
        content = ", ".join(f"{key}: {value}" for key, value in data.items())
    return content if len(content) <= limit else content[: limit - 1] + "…"


def _templated_reply(tools: list[ToolSpec]) -> str:
    if not tools:
        return (
            "Thanks for your message. I am running offline without a language model, "
            "so I can only give this standard answer."
        )
    abilities = ", ".join(tool_name(tool).replace("_", " ") for tool in tools)
    return (
        f"Thanks for your message. I can help with: {abilities}. "
        "Could you tell me a bit more, for example your order number?"
    )
