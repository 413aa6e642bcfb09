"""The tokens a run's model calls used, counted as LangChain reports them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult


@dataclass(slots=True)
class Usage:
    """Totals over every model call of one run attempt (``usage_metadata`` of the
    messages the models returned; a provider that reports none counts as a call only)."""

    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "model_calls": self.model_calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
        }


class UsageTally(BaseCallbackHandler):
    """Adds each finished model call's usage to ``usage``."""

    # In the loop, without a thread hop; only model events reach it.
    run_inline = True
    ignore_chain = True
    ignore_agent = True
    ignore_retriever = True
    ignore_retry = True
    ignore_custom_event = True

    def __init__(self, usage: Usage) -> None:
        self.usage = usage

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        usage = self.usage
        usage.model_calls += 1
        for generations in response.generations:
            for gen in generations:
                message = gen.message if isinstance(gen, ChatGeneration) else None
                meta = message.usage_metadata if isinstance(message, AIMessage) else None
                if meta:
                    usage.input_tokens += meta.get("input_tokens", 0)
                    usage.output_tokens += meta.get("output_tokens", 0)
                    usage.total_tokens += meta.get("total_tokens", 0)
