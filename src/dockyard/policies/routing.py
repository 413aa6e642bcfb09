"""``policies.routing``: a call to a routed model goes to the model of a tier, chosen by rules.

Tiers are names for models under ``models:`` (``fast: haiku``, ``quality: default``).
Rules are tried in order and the first whose every condition holds names the tier;
when none does, ``default`` does. A rule looks at the call (characters of its messages'
text, estimated tokens of that text and of the tools it is given, the number of tools)
and at the run's ``priority`` (a top-level field of its input, else of its context;
through the gateway, of the request's ``metadata``).

Routing happens where a model is chosen, before the chosen model's own chain (cache →
PII → ... → provider), so the call is the tier model's in every way: its cache entries,
its retries and fallbacks, its usage and price. The model registry asks ``Router.route``
for each call of ``chat_model(name)`` with ``name`` in ``apply_to``; the gateway does the
same for ``/v1/chat/completions``. The tier travels in the call's metadata
(``providers.registry.TIER_KEY``), where the run's usage tally records it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.utils.function_calling import convert_to_openai_tool

from dockyard.policies.input_limits import estimate_tokens
from dockyard.providers.registry import Route
from dockyard.settings import RoutingConfig, RoutingRule

PRIORITY_FIELD = "priority"


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What the rules look at. ``tokens`` is None until a rule needs it (it costs a pass
    over the tools' schemas)."""

    chars: int
    tools: int
    priority: str | None
    tokens: int | None = None


def _text(messages: Sequence[BaseMessage]) -> str:
    return "\n".join(m.text for m in messages)


def _tool_text(tool: Any) -> str:
    if isinstance(tool, Mapping):
        return json.dumps(tool, default=str)
    try:
        return json.dumps(convert_to_openai_tool(tool), default=str)
    except Exception:  # a schema LangChain cannot describe: counted by its repr
        return repr(tool)


def estimate_call_tokens(messages: Sequence[BaseMessage], tools: Sequence[Any]) -> int:
    """The message text's estimated tokens plus those of the tools' JSON schemas (which
    providers put into the prompt); ``input_limits.estimate_tokens`` says how."""
    tokens = estimate_tokens(_text(messages))
    return tokens + sum(estimate_tokens(_tool_text(t)) for t in tools)


def _within(value: int, low: int | None, high: int | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def matches(rule: RoutingRule, facts: CallFacts) -> bool:
    if rule.priority is not None and facts.priority not in rule.priority:
        return False
    if not _within(facts.chars, rule.min_chars, rule.max_chars):
        return False
    if not _within(facts.tools, rule.min_tools, rule.max_tools):
        return False
    if rule.min_tokens is not None or rule.max_tokens is not None:
        assert facts.tokens is not None
        return _within(facts.tokens, rule.min_tokens, rule.max_tokens)
    return True


class Router:
    """A ``providers.registry.ModelRouter`` for one ``policies.routing`` block."""

    def __init__(self, config: RoutingConfig) -> None:
        self.config = config
        self._apply_to = frozenset(config.apply_to)
        self._counts_tokens = any(
            r.min_tokens is not None or r.max_tokens is not None for r in config.rules
        )

    def tier(self, facts: CallFacts) -> str:
        """The tier of the first rule that holds for ``facts``, else the default."""
        for rule in self.config.rules:
            if matches(rule, facts):
                return rule.tier
        return self.config.default

    def facts(
        self, messages: Sequence[BaseMessage], tools: Sequence[Any], priority: str | None
    ) -> CallFacts:
        text = _text(messages)
        tokens = None
        if self._counts_tokens:
            tokens = estimate_tokens(text) + sum(estimate_tokens(_tool_text(t)) for t in tools)
        # The joins between messages are not the user's characters.
        chars = len(text) - max(len(messages) - 1, 0)
        return CallFacts(chars, len(tools), priority, tokens)

    def routes(self, name: str) -> bool:
        return name in self._apply_to

    def route(
        self,
        name: str,
        messages: Sequence[BaseMessage],
        tools: Sequence[Any],
        priority: str | None,
    ) -> Route | None:
        if name not in self._apply_to:
            return None
        tier = self.tier(self.facts(messages, tools, priority))
        return Route(tier, self.config.tiers[tier])


def run_priority(input: Any, context: Any) -> str | None:
    """A run's ``priority``: the top-level field of its input, else of its context (a
    mapping or an object with the attribute). Only a non-empty string counts."""
    for source in (input, context):
        if isinstance(source, Mapping):
            value = source.get(PRIORITY_FIELD)
        else:
            value = getattr(source, PRIORITY_FIELD, None)
        if isinstance(value, str) and value:
            return value
    return None
