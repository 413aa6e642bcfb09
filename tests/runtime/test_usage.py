"""The usage tally as a unit: what one run's model calls used, per model and per call, and
what they cost, as LangChain reports them (through its real callback machinery)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import uuid4

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.runnables import RunnableConfig

from dockyard.policies.prices import SHIPPED, PriceTable
from dockyard.runtime.usage import MAX_STORED_CALLS, ModelCall, Usage, UsageTally, add_usage
from dockyard.settings import ModelPrice
from dockyard.testing import ScriptedChatModel


def said(text: str, inputs: int, outputs: int, **details: int) -> AIMessage:
    usage = UsageMetadata(input_tokens=inputs, output_tokens=outputs, total_tokens=inputs + outputs)
    if details:
        usage["input_token_details"] = details  # type: ignore[typeddict-item]
    return AIMessage(text, usage_metadata=usage)


def tally(prices: PriceTable | None = None) -> tuple[Usage, RunnableConfig]:
    usage = Usage()
    handler = UsageTally(usage, prices or PriceTable.from_config())
    return usage, {"callbacks": [handler]}


PRICED = PriceTable.from_config({"scripted": ModelPrice(input=2, output=8, cached_input=0.5)})


async def test_a_call_is_recorded_with_its_tokens_cost_and_latency() -> None:
    usage, config = tally(PRICED)
    model = ScriptedChatModel(responses=[said("hello", 1_000, 200)])
    await model.ainvoke([HumanMessage("hi")], config)
    assert usage.model_calls == 1
    (call,) = usage.calls
    assert (call.model, call.input_tokens, call.output_tokens) == ("scripted", 1_000, 200)
    assert call.cost_usd == pytest.approx(1_000 * 2e-6 + 200 * 8e-6)
    assert call.latency_ms > 0 and call.first_token_ms is None  # not streamed
    assert usage.cost_usd == pytest.approx(call.cost_usd)


async def test_cached_input_tokens_are_charged_at_the_cached_price() -> None:
    usage, config = tally(PRICED)
    model = ScriptedChatModel(responses=[said("hello", 1_000, 100, cache_read=800)])
    await model.ainvoke([HumanMessage("hi")], config)
    (call,) = usage.calls
    assert call.cached_input_tokens == 800 and usage.cached_input_tokens == 800
    assert call.cost_usd == pytest.approx(200 * 2e-6 + 800 * 0.5e-6 + 100 * 8e-6)


async def test_a_streamed_call_has_a_time_to_first_token() -> None:
    usage, config = tally(PRICED)
    model = ScriptedChatModel(responses=[said("one two three four", 10, 4)])
    chunks = [c async for c in model.astream([HumanMessage("hi")], config)]
    assert len(chunks) > 1
    (call,) = usage.calls
    assert call.first_token_ms is not None
    assert 0 <= call.first_token_ms <= call.latency_ms
    assert (call.input_tokens, call.output_tokens) == (10, 4)


async def test_an_unknown_model_costs_none_and_is_named() -> None:
    usage, config = tally()
    model = ScriptedChatModel(responses=[said("x", 10, 5)], model_name="house-llama")
    await model.ainvoke([HumanMessage("hi")], config)
    (call,) = usage.calls
    assert call.model == "house-llama" and call.cost_usd is None
    stored = usage.as_dict()
    assert stored["unpriced_models"] == ["house-llama"]
    assert stored["models"]["house-llama"]["cost_usd"] is None
    assert stored["cost_usd"] == 0.0  # over the priced calls: there are none


async def test_calls_are_split_per_model() -> None:
    usage, config = tally(PRICED)
    a = ScriptedChatModel(responses=[said("a", 100, 10)], cycle=True)
    b = ScriptedChatModel(responses=[said("b", 7, 3)], model_name="gpt-4o-mini")
    await a.ainvoke([HumanMessage("1")], config)
    await b.ainvoke([HumanMessage("2")], config)
    await a.ainvoke([HumanMessage("3")], config)
    stored = usage.as_dict()
    assert stored["model_calls"] == 3
    assert (stored["input_tokens"], stored["output_tokens"]) == (207, 23)
    assert stored["total_tokens"] == 230
    scripted, mini = stored["models"]["scripted"], stored["models"]["gpt-4o-mini"]
    assert (scripted["calls"], scripted["input_tokens"], scripted["output_tokens"]) == (2, 200, 20)
    assert scripted["cost_usd"] == pytest.approx(2 * (100 * 2e-6 + 10 * 8e-6))
    assert mini["cost_usd"] == pytest.approx(SHIPPED["gpt-4o-mini"].cost(7, 3))
    assert stored["cost_usd"] == pytest.approx(scripted["cost_usd"] + mini["cost_usd"])
    assert [c["model"] for c in stored["calls"]] == ["scripted", "gpt-4o-mini", "scripted"]
    rows = usage.ledger("run-1", "asst-1", at=datetime(2026, 12, 7, 9, tzinfo=UTC))
    assert {r["model"]: (r["calls"], r["input_tokens"]) for r in rows} == {
        "scripted": (2, 200),
        "gpt-4o-mini": (1, 7),
    }
    assert {r["day"] for r in rows} == {date(2026, 12, 7)}
    assert all(r["tenant_id"] is None and r["key_id"] is None for r in rows)


def _result(message: AIMessage, llm_output: dict[str, Any] | None = None) -> LLMResult:
    return LLMResult(generations=[[ChatGeneration(message=message)]], llm_output=llm_output)


def test_names_come_from_the_request_then_from_the_response() -> None:
    usage = Usage()
    handler = UsageTally(usage, PriceTable.from_config())
    # As an Anthropic model reports it: the cache write is in the input count too.
    run = uuid4()
    handler.on_chat_model_start(
        {}, [[]], run_id=run, metadata={"ls_model_name": "claude-sonnet-4-5", "ls_provider": "x"}
    )
    handler.on_llm_end(
        _result(said("a", 10_000, 100, cache_read=2_000, cache_creation=5_000)), run_id=run
    )
    # No name at the start (an unusual provider): the served model's name prices it.
    run = uuid4()
    handler.on_chat_model_start({}, [[]], run_id=run, invocation_params={})
    served = said("b", 100, 10)
    served.response_metadata = {"model_name": "gpt-4o-mini-2024-07-18"}
    handler.on_llm_end(_result(served), run_id=run)
    # A failed call leaves nothing behind.
    run = uuid4()
    handler.on_chat_model_start({}, [[]], run_id=run, invocation_params={"model": "gpt-5"})
    handler.on_llm_error(RuntimeError("boom"), run_id=run)
    first, second = usage.calls
    sonnet = SHIPPED["claude-sonnet-4-5"]
    assert first.model == "claude-sonnet-4-5"
    assert (first.cached_input_tokens, first.cache_write_tokens) == (2_000, 5_000)
    assert first.cost_usd == pytest.approx(
        (3_000 * 3 + 2_000 * 0.30 + 5_000 * 3.75 + 100 * 15) * 1e-6
    )
    assert sonnet.cost(10_000, 100, 2_000, 5_000) == pytest.approx(first.cost_usd)
    assert second.model == "gpt-4o-mini-2024-07-18"
    assert second.cost_usd == pytest.approx(SHIPPED["gpt-4o-mini"].cost(100, 10))
    assert usage.model_calls == 2


def test_attempts_add_up() -> None:
    first = Usage()
    first.add(ModelCall("gpt-4o-mini", 100, 10, cost_usd=0.001, latency_ms=5))
    first.add(ModelCall("house", 5, 5, latency_ms=1))
    second = Usage()
    second.add(ModelCall("gpt-4o-mini", 50, 5, cached_input_tokens=20, cost_usd=0.0005))
    second.add(ModelCall("claude-haiku-4-5", 1, 1, cost_usd=0.25))
    stored = add_usage(None, first)
    assert stored is not None
    total = add_usage(stored, second)
    assert total is not None
    assert total["model_calls"] == 4
    assert (total["input_tokens"], total["cached_input_tokens"]) == (156, 20)
    assert total["cost_usd"] == pytest.approx(0.2515)
    assert total["unpriced_models"] == ["house"]
    mini = total["models"]["gpt-4o-mini"]
    assert (mini["calls"], mini["input_tokens"], mini["cost_usd"]) == (2, 150, 0.0015)
    assert total["models"]["house"]["cost_usd"] is None
    assert len(total["calls"]) == 4
    # An attempt that called no model changes nothing; none at all stores nothing.
    assert add_usage(total, Usage()) == total
    assert add_usage(None, Usage()) is None


def test_a_run_stores_its_first_calls_one_by_one() -> None:
    usage = Usage()
    for _ in range(MAX_STORED_CALLS + 5):
        usage.add(ModelCall("m", 1, 1))
    stored = usage.as_dict()
    assert stored["model_calls"] == MAX_STORED_CALLS + 5
    assert len(stored["calls"]) == MAX_STORED_CALLS
    assert stored["models"]["m"]["calls"] == MAX_STORED_CALLS + 5
