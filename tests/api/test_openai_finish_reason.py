"""``finish_reason`` of /v1/chat/completions for every way an agent's reply can end, streamed
and not, through the OpenAI SDK against a live server.

The ``endings`` graph (tests/fixtures/project/endings.py) replies the way the user message
names, with ``response_metadata`` as langchain-openai or langchain-anthropic set it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

# user message -> the finish_reason an OpenAI client must see
ENDINGS = {
    "stop": "stop",
    "end_turn": "stop",
    "length": "length",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "content_filter": "content_filter",
    "refusal": "content_filter",
}


@pytest.fixture
async def oai(server_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=f"{server_url}/v1", api_key="unused", max_retries=0)
    yield client
    await client.close()


def _ask(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


async def _chunks(oai: openai.AsyncOpenAI, text: str) -> list[Any]:
    stream = await oai.chat.completions.create(model="endings", messages=_ask(text), stream=True)
    return [chunk async for chunk in stream]


@pytest.mark.parametrize(("ending", "reason"), ENDINGS.items())
async def test_finish_reason(oai: openai.AsyncOpenAI, ending: str, reason: str) -> None:
    completion = await oai.chat.completions.create(model="endings", messages=_ask(ending))
    choice = completion.choices[0]
    assert choice.finish_reason == reason
    assert choice.message.content == f"a reply ending in {ending}"
    assert choice.message.tool_calls is None


@pytest.mark.parametrize(("ending", "reason"), ENDINGS.items())
async def test_finish_reason_streamed(oai: openai.AsyncOpenAI, ending: str, reason: str) -> None:
    chunks = await _chunks(oai, ending)
    assert [c.choices[0].finish_reason for c in chunks] == [None] * (len(chunks) - 1) + [reason]
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == f"a reply ending in {ending}"


async def test_tool_calls(oai: openai.AsyncOpenAI) -> None:
    completion = await oai.chat.completions.create(model="endings", messages=_ask("tool_calls"))
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    assert calls[0].id == "call_endings_1" and calls[0].type == "function"
    assert calls[0].function.name == "lookup_order"
    assert json.loads(calls[0].function.arguments) == {"order_id": "A-17"}


async def test_tool_calls_streamed(oai: openai.AsyncOpenAI) -> None:
    chunks = await _chunks(oai, "tool_calls")
    reasons = [c.choices[0].finish_reason for c in chunks]
    assert reasons == [None] * (len(chunks) - 1) + ["tool_calls"]
    deltas = [tc for c in chunks for tc in c.choices[0].delta.tool_calls or []]
    assert [d.index for d in deltas] == [0] * len(deltas) and deltas
    assert deltas[0].id == "call_endings_1"
    assert "".join(d.function.name or "" for d in deltas) == "lookup_order"
    arguments = "".join(d.function.arguments or "" for d in deltas)
    assert json.loads(arguments) == {"order_id": "A-17"}
    assert not "".join(c.choices[0].delta.content or "" for c in chunks)
