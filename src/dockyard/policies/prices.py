"""What a model call costs: a price table per model, in USD per million tokens.

The shipped table (``SHIPPED``) holds the published list prices of current Anthropic and
OpenAI models; ``policies.prices`` in dockyard.yaml adds models or replaces entries
(``PriceTable.from_config``). A model found in neither has no price: its calls cost
``None``, recorded as unknown, never estimated from a similar name.

Names are matched as a provider reports them: exactly, then without a ``provider:``
prefix, then without a snapshot date suffix (``claude-haiku-4-5-20251001`` →
``claude-haiku-4-5``, ``gpt-4o-mini-2024-07-18`` → ``gpt-4o-mini``); a snapshot priced
differently from its alias has its own entry.

Token counts follow LangChain's ``usage_metadata``: ``input_tokens`` includes cache reads
and cache writes (``input_token_details.cache_read`` / ``cache_creation``), which are
charged at their own prices when the model has them and at the input price otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dockyard.settings import ModelPrice

_PER_TOKEN = 1e-6  # prices are per million tokens
_SNAPSHOT = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2})$")


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens. ``cached_input``: a cache read; ``cache_write``: writing
    the prompt cache (Anthropic's 5-minute cache). ``long_context``: the prices of a
    request whose prompt (all its input tokens) is over ``long_context_above`` tokens."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None
    long_context_above: int | None = None
    long_context: Price | None = None

    def cost(
        self,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> float:
        """USD for one call; the input counts include the cached ones (LangChain's way)."""
        if (
            self.long_context is not None
            and self.long_context_above is not None
            and input_tokens > self.long_context_above
        ):
            return self.long_context.cost(
                input_tokens, output_tokens, cached_input_tokens, cache_write_tokens
            )
        fresh = max(input_tokens - cached_input_tokens - cache_write_tokens, 0)
        cached = self.input if self.cached_input is None else self.cached_input
        write = self.input if self.cache_write is None else self.cache_write
        return (
            fresh * self.input
            + cached_input_tokens * cached
            + cache_write_tokens * write
            + output_tokens * self.output
        ) * _PER_TOKEN


def _claude(i: float, o: float, read: float, write: float) -> Price:
    return Price(input=i, output=o, cached_input=read, cache_write=write)


# Anthropic: platform.claude.com/docs/en/about-claude/pricing (base input, 5m cache
# writes, cache hits, output), read 2026-12-07 through the model overview pages; the
# Sonnet 5.5 cache-hit cut to $0.10 of 2026-10-07 as reported by pricing trackers
# checked against that page on 2026-10-24. Haiku 5.5 is priced by prompt length (over
# 100K input tokens every token of the request costs the higher rates).
_OPUS_4_5 = _claude(5, 25, 0.50, 6.25)
_OPUS_4_1 = _claude(15, 75, 1.50, 18.75)
_SONNET_4 = _claude(3, 15, 0.30, 3.75)
_SONNET_5 = _claude(2, 10, 0.20, 2.50)
_FABLE_5 = _claude(10, 50, 1.00, 12.50)
_ANTHROPIC: dict[str, Price] = {
    "claude-fable-5-1": _claude(10, 50, 0.25, 12.50),
    "claude-fable-5": _FABLE_5,
    "claude-opus-5-5": _claude(4, 20, 0.20, 5),
    "claude-opus-5": _OPUS_4_5,
    "claude-opus-4-8": _OPUS_4_5,
    "claude-opus-4-7": _OPUS_4_5,
    "claude-opus-4-6": _OPUS_4_5,
    "claude-opus-4-5": _OPUS_4_5,
    "claude-opus-4-1": _OPUS_4_1,
    "claude-opus-4-0": _OPUS_4_1,
    "claude-opus-4": _OPUS_4_1,
    "claude-sonnet-5-5": _claude(2, 10, 0.10, 2.50),
    "claude-sonnet-5": _SONNET_5,
    "claude-sonnet-4-6": _SONNET_4,
    "claude-sonnet-4-5": _SONNET_4,
    "claude-sonnet-4-0": _SONNET_4,
    "claude-sonnet-4": _SONNET_4,
    "claude-3-7-sonnet": _SONNET_4,
    "claude-haiku-5-5": Price(
        input=0.10,
        output=0.50,
        cached_input=0.01,
        cache_write=0.125,
        long_context_above=100_000,
        long_context=_claude(0.50, 2.50, 0.05, 0.625),
    ),
    "claude-haiku-4-5": _claude(1, 5, 0.10, 1.25),
    "claude-3-5-haiku": _claude(0.80, 4, 0.08, 1),
    "claude-3-haiku": _claude(0.25, 1.25, 0.03, 0.30),
}


def _gpt(i: float, cached: float | None, o: float) -> Price:
    return Price(input=i, output=o, cached_input=cached)


# OpenAI: developers.openai.com/api/docs/pricing, Standard tier, short context (as read on
# 2026-11-05 and reported by api-evangelist's "OpenAI API Pricing" of 2026-11-06 and
# tokenmix.ai of 2026-06-04); the GPT-5, 4.1, 4o and o-series rows as in LiteLLM's
# model_prices_and_context_window.json (BerriAI/litellm, read 2026-12-07). Prices of
# prompts past a model's long-context threshold are not modelled here: override them.
_OPENAI: dict[str, Price] = {
    "gpt-5.5": _gpt(5, 0.50, 30),
    "gpt-5.5-pro": _gpt(30, None, 180),
    "gpt-5.4": _gpt(2.50, 0.25, 15),
    "gpt-5.4-pro": _gpt(30, None, 180),
    "gpt-5.4-mini": _gpt(0.75, 0.075, 4.50),
    "gpt-5.4-nano": _gpt(0.20, 0.02, 1.25),
    "gpt-5": _gpt(1.25, 0.125, 10),
    "gpt-5-mini": _gpt(0.25, 0.025, 2),
    "gpt-5-nano": _gpt(0.05, 0.005, 0.40),
    "gpt-4.1": _gpt(2, 0.50, 8),
    "gpt-4.1-mini": _gpt(0.40, 0.10, 1.60),
    "gpt-4.1-nano": _gpt(0.10, 0.025, 0.40),
    "gpt-4o": _gpt(2.50, 1.25, 10),
    "gpt-4o-2024-05-13": _gpt(5, None, 15),
    "gpt-4o-mini": _gpt(0.15, 0.075, 0.60),
    "o3": _gpt(2, 0.50, 8),
    "o4-mini": _gpt(1.10, 0.275, 4.40),
}

SHIPPED: Mapping[str, Price] = {**_ANTHROPIC, **_OPENAI}


class PriceTable:
    """The shipped prices with the configured ones over them; lookups are remembered
    (they run on every model call)."""

    def __init__(self, prices: Mapping[str, Price]) -> None:
        self.prices = dict(prices)
        self._found: dict[tuple[str | None, ...], tuple[str, Price] | None] = {}

    @classmethod
    def from_config(cls, configured: Mapping[str, ModelPrice] | None = None) -> PriceTable:
        prices = dict(SHIPPED)
        for name, p in (configured or {}).items():
            prices[name] = Price(
                input=p.input,
                output=p.output,
                cached_input=p.cached_input,
                cache_write=p.cache_write,
            )
        return cls(prices)

    def lookup(self, *names: str | None) -> tuple[str, Price] | None:
        """The first of ``names`` (most specific first) that has a price, as
        (the table's name, its price); None when none has one."""
        try:
            return self._found[names]
        except KeyError:
            pass
        found = None
        for name in names:
            if name and (found := self._match(name)) is not None:
                break
        if len(self._found) < 10_000:  # names come from providers: keep the memo bounded
            self._found[names] = found
        return found

    def _match(self, name: str) -> tuple[str, Price] | None:
        bare = name.split(":", 1)[1] if ":" in name else name
        for candidate in (name, bare, _SNAPSHOT.sub("", bare)):
            price = self.prices.get(candidate)
            if price is not None:
                return candidate, price
        return None


DEFAULT_PRICES = PriceTable(SHIPPED)
