"""The tokens-per-minute layer on its own: whose bucket a call counts in (the run's
metadata, else the request's caller), the estimate it must fit, what it is charged
(the reported usage), streaming, and a synchronous call limited on the server's loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableLambda

from dockyard.caller import Caller, use
from dockyard.errors import RateLimitedError
from dockyard.policies.rate_limit import MemoryStore, RateLimiter
from dockyard.policies.token_limit import TokenLimitLayer, estimate_call
from dockyard.providers.wrapper import ModelCall, wrap_model
from dockyard.settings import RateLimitConfig
from dockyard.testing.models import ScriptedChatModel


def answer() -> AIMessage:
    return AIMessage(
        "ok", usage_metadata={"input_tokens": 10, "output_tokens": 20, "total_tokens": 30}
    )


def setup(per_minute: int = 40, **policies: Any) -> tuple[Any, TokenLimitLayer]:
    limiter = RateLimiter(RateLimitConfig(tokens_per_minute=per_minute), MemoryStore())

    async def key_policies(key_id: str) -> dict[str, Any] | None:
        return policies.get(key_id)

    layer = TokenLimitLayer(limiter, key_policies)
    model = ScriptedChatModel(responses=[answer()], cycle=True)
    return wrap_model(model, [layer], name="default"), layer


RUN = {"metadata": {"dockyard_tenant": "acme", "dockyard_key_id": "key_1"}}


def in_node(model: Any, config: Any = None) -> Any:
    """``model`` called from inside a runnable (a graph node), which is where a call sees
    its run's config."""

    async def node(text: str) -> Any:
        return await model.ainvoke(text)

    def sync_node(text: str) -> Any:
        return model.invoke(text)

    return RunnableLambda(sync_node, afunc=node).with_config(config or {})


async def test_a_runs_key_is_charged_what_the_provider_reports() -> None:
    model, _ = setup()
    run = in_node(model, RUN)
    await run.ainvoke("hi")  # 30 of 40
    await run.ainvoke("hi")  # the estimate (1) fit: 60
    with pytest.raises(RateLimitedError) as err:
        await run.ainvoke("hi")
    assert "tokens per minute" in err.value.message
    # Another key, and a call of no key at all, are not held back.
    await in_node(model, {"metadata": {"dockyard_key_id": "key_2"}}).ainvoke("hi")
    for _ in range(3):
        await in_node(model).ainvoke("hi")


async def test_a_keys_own_limit_and_the_request_caller() -> None:
    own = {"rate_limit": {"tokens_per_minute": 25}}
    model, _ = setup(1000)
    with use(Caller("key_9", "acme", policies=own)):  # a gateway call: no run metadata
        await model.ainvoke("hi")  # its own 25: 30 spent
        with pytest.raises(RateLimitedError):
            await model.ainvoke("hi")


async def test_a_runs_key_gets_its_own_limit_from_the_key_store() -> None:
    model, _ = setup(1000, key_1={"rate_limit": {"tokens_per_minute": 25}})
    run = in_node(model, RUN)  # a worker: no request, the key's policies looked up
    await run.ainvoke("hi")
    with pytest.raises(RateLimitedError):
        await run.ainvoke("hi")


async def test_streaming_is_charged_after_the_stream() -> None:
    model, _ = setup()

    async def node(text: str) -> str:
        return "".join([str(c.content) async for c in model.astream(text)])

    run = RunnableLambda(node).with_config(RUN)
    for _ in range(2):
        assert await run.ainvoke("hi") == "ok"
    with pytest.raises(RateLimitedError):
        await run.ainvoke("hi")


async def test_a_sync_call_is_limited_on_the_loop_of_the_async_ones() -> None:
    model, _ = setup()
    run = in_node(model, RUN)
    await run.ainvoke("hi")  # the loop is known now: 30 spent
    await asyncio.to_thread(run.invoke, "hi")  # 60
    with pytest.raises(RateLimitedError):
        await asyncio.to_thread(run.invoke, "hi")


def test_the_estimate_counts_the_text_and_the_answer_allowed() -> None:
    from langchain_core.messages import HumanMessage

    call = ModelCall(
        name="default",
        model=ScriptedChatModel(responses=[answer()]),
        messages=[HumanMessage("x" * 400)],
        stop=None,
        kwargs={"max_tokens": 50},
    )
    assert estimate_call(call) == 100 + 50
