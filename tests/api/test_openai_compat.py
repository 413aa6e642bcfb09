"""/v1/models and /v1/chat/completions through the real OpenAI SDK against a live server."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
from langgraph_sdk.client import LangGraphClient

from dockyard.api.routes import openai_compat
from tests.conftest import eventually

USER_HI = {"role": "user", "content": "hi"}


@pytest.fixture
async def oai(server_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    # No retries: a test must see the first answer. test_failed_agent_is_not_retried
    # checks what the SDK's default retry policy does.
    client = openai.AsyncOpenAI(base_url=f"{server_url}/v1", api_key="unused", max_retries=0)
    yield client
    await client.close()


async def stream_chunks(oai: openai.AsyncOpenAI, **kw: Any) -> list[Any]:
    stream = await oai.chat.completions.create(stream=True, **kw)
    return [chunk async for chunk in stream]


def text_of(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# -- /v1/models ------------------------------------------------------------------------


async def test_models_list_graphs_and_created_assistants(
    oai: openai.AsyncOpenAI, client: LangGraphClient
) -> None:
    custom = await client.assistants.create("chat", name="support-bot")
    page = await oai.models.list()
    ids = [m.id for m in page.data]
    for graph in ("chat", "failing", "weather_agent"):
        assert graph in ids
    assert custom["assistant_id"] in ids
    # A graph's default assistant is listed once, under the graph's name.
    default_ids = {m.model_extra["dockyard"]["assistant_id"] for m in page.data if m.id == "chat"}
    assert not default_ids & set(ids)
    assert len(ids) == len(set(ids))
    for m in page.data:
        assert m.object == "model"
        assert m.owned_by == "dockyard"
        assert isinstance(m.created, int) and m.created > 0
    got = await oai.models.retrieve("chat")
    assert got.id == "chat"
    assert got.model_extra["dockyard"]["graph_id"] == "chat"
    # The created assistant answers by its id.
    reply = await oai.chat.completions.create(model=custom["assistant_id"], messages=[USER_HI])
    assert reply.choices[0].message.content == "hello there friend"


async def test_models_list_wire_shape(http: httpx.AsyncClient) -> None:
    body = (await http.get("/v1/models")).json()
    assert body["object"] == "list"
    assert set(body["data"][0]) >= {"id", "object", "created", "owned_by"}


# -- completions -----------------------------------------------------------------------


async def test_completion_non_stream(oai: openai.AsyncOpenAI) -> None:
    raw = await oai.chat.completions.with_raw_response.create(
        model="chat",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        ],
        user="u-1",
        metadata={"ticket": "T-9"},
    )
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.model == "chat"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "hello there friend"
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    # The fake model reports no usage: we say so (null) rather than invent zeros.
    assert completion.usage is None
    run_id = raw.headers["x-run-id"]
    assert raw.headers["x-thread-id"]
    assert completion.id == f"chatcmpl-{run_id}"


async def test_stream_deltas_concatenate(
    oai: openai.AsyncOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Keep-alive comments between the chunks must not disturb the SDK.
    monkeypatch.setattr(openai_compat, "HEARTBEAT_SECONDS", 0.001)  # the server is in-process
    chunks = await stream_chunks(oai, model="chat", messages=[USER_HI])
    assert chunks[0].choices[0].delta.role == "assistant"
    content = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert len(content) > 1, "the reply must arrive in pieces, as the model streamed it"
    assert text_of(chunks) == "hello there friend"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1


async def test_stream_wire_format(http: httpx.AsyncClient) -> None:
    body = {"model": "chat", "messages": [USER_HI], "stream": True}
    async with http.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-run-id"] and r.headers["x-thread-id"]
        text = (await r.aread()).decode()
    events = [e for e in text.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    first = json.loads(events[0].removeprefix("data: "))
    assert first["object"] == "chat.completion.chunk"


async def test_agent_reply_usage_and_stream(oai: openai.AsyncOpenAI) -> None:
    """A create_agent loop: model → tool → model. The reply is the last AI message; the
    stream carries only AI text (no tool result), and usage sums both model calls."""
    completion = await oai.chat.completions.create(model="weather_agent", messages=[USER_HI])
    assert completion.choices[0].message.content == "It is sunny in Paris."
    assert completion.choices[0].message.tool_calls is None  # already run by the agent
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage is not None
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0

    chunks = await stream_chunks(
        oai,
        model="weather_agent",
        messages=[USER_HI],
        stream_options={"include_usage": True},
    )
    assert text_of(chunks) == "Let me check.\n\nIt is sunny in Paris."
    assert all(c.choices[0].delta.tool_calls is None for c in chunks if c.choices)
    assert chunks[-1].choices == []
    assert chunks[-1].usage == usage
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-2].choices[0].finish_reason == "stop"


async def test_thread_continuity(oai: openai.AsyncOpenAI, client: LangGraphClient) -> None:
    thread_id = str(uuid.uuid4())
    headers = {"X-Thread-Id": thread_id}
    first = await oai.chat.completions.with_raw_response.create(
        model="chat", messages=[USER_HI], extra_headers=headers
    )
    assert first.headers["x-thread-id"] == thread_id
    answer = first.parse().choices[0].message.content
    history = [
        USER_HI,
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "and again"},
    ]
    chunks = await stream_chunks(oai, model="chat", messages=history, extra_headers=headers)
    assert text_of(chunks) == "hello there friend"
    state = await client.threads.get_state(thread_id)
    msgs = state["values"]["messages"]
    assert [(m["type"], m["content"]) for m in msgs] == [
        ("human", "hi"),
        ("ai", "hello there friend"),
        ("human", "and again"),
        ("ai", "hello there friend"),
    ]
    thread = await client.threads.get(thread_id)
    assert thread["metadata"]["graph_id"] == "chat"


async def test_thread_of_another_graph_conflicts(oai: openai.AsyncOpenAI) -> None:
    headers = {"X-Thread-Id": str(uuid.uuid4())}
    await oai.chat.completions.create(model="chat", messages=[USER_HI], extra_headers=headers)
    with pytest.raises(openai.ConflictError) as err:
        await oai.chat.completions.create(
            model="weather_agent", messages=[USER_HI], extra_headers=headers
        )
    assert err.value.code == "thread_graph_mismatch"


async def test_interrupt_then_resume(oai: openai.AsyncOpenAI) -> None:
    headers = {"X-Thread-Id": str(uuid.uuid4())}
    chunks = await stream_chunks(
        oai, model="chat_approval", messages=[USER_HI], extra_headers=headers
    )
    final = chunks[-1]
    assert final.choices[0].finish_reason == "interrupt"
    interrupts = final.model_extra["dockyard"]["interrupts"]
    assert [i["value"] for i in interrupts] == [{"question": "send the email?"}]
    shown = text_of(chunks)
    assert json.loads(shown) == {"question": "send the email?"}

    history = [USER_HI, {"role": "assistant", "content": shown}, {"role": "user", "content": "yes"}]
    done = await oai.chat.completions.create(
        model="chat_approval", messages=history, extra_headers=headers
    )
    assert done.choices[0].message.content == "approved: yes"
    assert done.choices[0].finish_reason == "stop"
    assert "interrupts" not in done.model_extra["dockyard"]


async def test_interrupt_non_stream(oai: openai.AsyncOpenAI) -> None:
    completion = await oai.chat.completions.create(model="chat_approval", messages=[USER_HI])
    assert completion.choices[0].finish_reason == "interrupt"
    assert json.loads(completion.choices[0].message.content or "") == {
        "question": "send the email?"
    }
    assert completion.model_extra["dockyard"]["interrupts"][0]["value"] == {
        "question": "send the email?"
    }


# -- errors ----------------------------------------------------------------------------


async def test_unknown_model(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        await oai.chat.completions.create(model="no-such-agent", messages=[USER_HI])
    assert err.value.code == "model_not_found"
    assert "no-such-agent" in err.value.message
    with pytest.raises(openai.NotFoundError):
        await oai.models.retrieve("no-such-agent")


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("logit_bias", {"logit_bias": {"50256": -100}}),
        ("parallel_tool_calls", {"parallel_tool_calls": True}),
        ("n", {"n": 2}),
        ("response_format", {"response_format": {"type": "json_object"}}),
        (
            "tools",
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
        ),
        ("logprobs", {"logprobs": True}),
        ("frobnicate", {"extra_body": {"frobnicate": 1}}),
    ],
)
async def test_unsupported_fields_are_refused(
    oai: openai.AsyncOpenAI, field: str, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as err:
        await oai.chat.completions.create(model="chat", messages=[USER_HI], **kwargs)
    assert err.value.code == "unsupported_field"
    assert err.value.param == field
    assert field in err.value.message


async def test_invalid_messages_are_refused(oai: openai.AsyncOpenAI) -> None:
    bad: list[Any] = [
        [{"role": "tool", "content": "x"}],  # no tool_call_id
        [{"role": "function", "name": "f", "content": "x"}],
        [{"role": "user", "content": [{"type": "video", "video": "x"}]}],
        [],
    ]
    for messages in bad:
        with pytest.raises(openai.UnprocessableEntityError) as err:
            await oai.chat.completions.create(model="chat", messages=messages)
        assert err.value.code == "invalid_request"
        assert (err.value.param or "").startswith("messages")


async def test_stream_options_need_stream(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as err:
        await oai.chat.completions.create(
            model="chat", messages=[USER_HI], stream_options={"include_usage": True}
        )
    assert "stream_options" in err.value.message


async def test_failing_graph(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as err:
        await oai.chat.completions.create(model="failing", messages=[USER_HI])
    assert err.value.status_code == 502
    assert err.value.code == "agent_failed"
    assert err.value.type == "agent_error"
    assert "ValueError: the tool exploded" in err.value.message
    assert err.value.response.headers["x-run-id"]


async def test_failing_graph_stream(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.APIError) as err:
        await stream_chunks(oai, model="failing", messages=[USER_HI])
    assert "the tool exploded" in err.value.message
    assert isinstance(err.value.body, dict) and err.value.body["code"] == "agent_failed"


async def test_failed_agent_is_not_retried(server_url: str, client: LangGraphClient) -> None:
    """The SDK retries 5xx by default; a failed agent run must not be rerun blindly."""
    thread_id = str(uuid.uuid4())
    sdk = openai.AsyncOpenAI(base_url=f"{server_url}/v1", api_key="unused")  # default retries
    try:
        with pytest.raises(openai.APIStatusError):
            await sdk.chat.completions.create(
                model="failing", messages=[USER_HI], extra_headers={"X-Thread-Id": thread_id}
            )
    finally:
        await sdk.close()
    runs = await client.runs.list(thread_id)
    assert [r["status"] for r in runs] == ["error"]


async def test_bad_thread_header(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as err:
        await oai.chat.completions.create(
            model="chat", messages=[USER_HI], extra_headers={"X-Thread-Id": "../etc"}
        )
    assert err.value.param == "X-Thread-Id"


async def test_client_leaving_a_stream_cancels_the_run(
    http: httpx.AsyncClient, client: LangGraphClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chat UI's "stop": the agent stops too, even while it streams no tokens."""
    monkeypatch.setattr(openai_compat, "HEARTBEAT_SECONDS", 0.05)  # the server is in-process
    thread_id = str(uuid.uuid4())
    body = {"model": "sleepy", "messages": [USER_HI], "stream": True}
    async with http.stream(
        "POST", "/v1/chat/completions", json=body, headers={"X-Thread-Id": thread_id}
    ) as r:
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                break  # the role chunk: the run is under way; now hang up

    seen: list[Any] = []

    async def cancelled() -> bool:
        runs = await client.runs.list(thread_id)
        seen.append([(x["status"], x["cancel_reason"]) for x in runs])
        return [x["status"] for x in runs] == ["interrupted"]

    try:
        await eventually(cancelled, timeout=5)
    except AssertionError:
        raise AssertionError(seen[-3:]) from None
