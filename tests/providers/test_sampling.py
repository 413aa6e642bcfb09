"""Run sampling settings (config["configurable"]["model_params"]) at the model layer."""

from __future__ import annotations

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langchain_openai import ChatOpenAI

from dockyard.providers import load_chat_model
from dockyard.sampling import ModelParamsError, with_run_params
from dockyard.testing import MockAnthropicServer, MockOpenAIServer, ScriptedChatModel

HI = [HumanMessage("hi")]


def params(**kw: object) -> RunnableConfig:
    return {"configurable": {"model_params": kw}}


def test_a_model_the_graph_builds_itself_can_take_them(mock_openai: MockOpenAIServer) -> None:
    own = ChatOpenAI(model="gpt-4o-mini", base_url=mock_openai.base_url, api_key="k")
    model = with_run_params(own)
    assert isinstance(model, ChatOpenAI) and model is not own
    assert with_run_params(model) is model
    model.invoke(HI, params(max_tokens=7, temperature=0.5, stop=["x"], seed=3))
    own.invoke(HI, params(max_tokens=7))  # the original is left as it was
    sent, untouched = (r.body for r in mock_openai.requests)
    assert sent["max_completion_tokens"] == 7 and sent["temperature"] == 0.5
    assert sent["stop"] == ["x"] and sent["seed"] == 3
    assert "max_completion_tokens" not in untouched


async def test_tool_bindings_and_streams_carry_them(mock_anthropic: MockAnthropicServer) -> None:
    model = load_chat_model(
        "anthropic:claude-sonnet-4-6", base_url=mock_anthropic.base_url, api_key="k"
    )
    assert isinstance(model, ChatAnthropic)
    bound = model.bind_tools([{"name": "f", "description": "f", "input_schema": {}}])
    await bound.ainvoke(HI, params(max_tokens=9, top_p=0.3))
    [_ async for _ in model.astream(HI, params(temperature=0.0))]
    first, second = (r.body for r in mock_anthropic.requests)
    assert first["max_tokens"] == 9 and first["top_p"] == 0.3 and first["tools"]
    assert second["temperature"] == 0.0 and second["stream"] is True


def test_the_run_wins_over_the_constructor(mock_openai: MockOpenAIServer) -> None:
    model = load_chat_model(
        "openai:gpt-4o-mini", base_url=mock_openai.base_url, temperature=0.9, max_tokens=100
    )
    model.invoke(HI, params(temperature=0.1))
    model.invoke(HI)
    with_run, without = (r.body for r in mock_openai.requests)
    assert with_run["temperature"] == 0.1 and with_run["max_completion_tokens"] == 100
    assert without["temperature"] == 0.9


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"seed": 1}, "seed: not available on Anthropic models"),
        ({"temperature": 1.2}, "Anthropic models take 0 to 1"),
        ({"top_k": 5}, "model_params.top_k: Extra inputs are not permitted"),
        ({"max_tokens": 0}, "model_params.max_tokens: Input should be greater than or equal"),
    ],
)
def test_what_cannot_apply_fails_before_the_request(
    mock_anthropic: MockAnthropicServer, kw: dict[str, object], message: str
) -> None:
    model = load_chat_model("anthropic:claude-x", base_url=mock_anthropic.base_url, api_key="k")
    with pytest.raises(ModelParamsError, match=message):
        model.invoke(HI, params(**kw))
    assert mock_anthropic.requests == []


def test_fake_models_cut_at_max_tokens_and_stop() -> None:
    model = ScriptedChatModel(responses=["one two three four five"], cycle=True)
    cut = model.invoke(HI, params(max_tokens=2))
    assert cut.content == "one two" and cut.response_metadata["finish_reason"] == "length"
    assert cut.usage_metadata is not None and cut.usage_metadata["output_tokens"] == 2
    stopped = model.invoke(HI, params(stop=[" four", " three"]))
    assert stopped.content == "one two"
    assert stopped.response_metadata["finish_reason"] == "stop"
    streamed = "".join(str(c.content) for c in model.stream(HI, params(max_tokens=3)))
    assert streamed == "one two three"
    whole = model.invoke(HI, params(temperature=1.5, seed=4))  # they do not sample
    assert whole.content == "one two three four five"


def test_a_tool_call_past_max_tokens_is_dropped() -> None:
    call = {"name": "lookup_order", "args": {"order_id": "A1001"}, "id": "c1"}
    model = ScriptedChatModel(responses=[AIMessage("", tool_calls=[call])], cycle=True)
    assert model.invoke(HI).tool_calls
    cut = model.invoke(HI, params(max_tokens=1))
    assert cut.tool_calls == [] and cut.response_metadata["finish_reason"] == "length"
