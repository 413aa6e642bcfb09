"""The real ``openai`` SDK against MockOpenAIServer."""

from __future__ import annotations

import itertools
import time
from typing import Any

import openai
import pytest

from dockyard.testing import DeterministicEmbeddings, MockOpenAIServer, MockReply, MockToolCall

MESSAGES: list[Any] = [{"role": "user", "content": "Where is my order?"}]


def client(srv: MockOpenAIServer, **options: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.base_url, api_key="test-key", **options)


def test_text_reply_usage_and_recorded_request(mock_openai: MockOpenAIServer) -> None:
    mock_openai.enqueue_text("It shipped yesterday.")

    completion = client(mock_openai).chat.completions.create(model="gpt-test", messages=MESSAGES)

    choice = completion.choices[0]
    assert choice.message.content == "It shipped yesterday." and choice.finish_reason == "stop"
    assert completion.model == "gpt-test"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (4, 3)
    [request] = mock_openai.requests
    assert request.path == "/v1/chat/completions" and request.model == "gpt-test"
    assert request.headers["authorization"] == "Bearer test-key"


def test_streamed_text_with_usage_chunk(mock_openai: MockOpenAIServer) -> None:
    mock_openai.enqueue_text("It shipped yesterday morning.")

    chunks = list(
        client(mock_openai).chat.completions.create(
            model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )

    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert texts == ["It", " shipped", " yesterday", " morning."]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4
    assert all(c.object == "chat.completion.chunk" for c in chunks)


def test_stream_without_include_usage_has_no_usage_chunk(mock_openai: MockOpenAIServer) -> None:
    chunks = list(
        client(mock_openai).chat.completions.create(model="m", messages=MESSAGES, stream=True)
    )

    assert all(c.usage is None and c.choices for c in chunks)


def test_tool_calls_non_streaming(mock_openai: MockOpenAIServer) -> None:
    mock_openai.enqueue(
        MockReply(
            tool_calls=[
                MockToolCall("lookup_order", {"order_id": "A1"}, id="call_1"),
                MockToolCall("lookup_order", {"order_id": "B2"}),
            ]
        )
    )

    choice = client(mock_openai).chat.completions.create(model="m", messages=MESSAGES).choices[0]

    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    calls = choice.message.tool_calls or []
    assert next((c.id, c.function.name, c.function.arguments) for c in calls) == (  # type: ignore[union-attr]
        "call_1",
        "lookup_order",
        '{"order_id": "A1"}',
    )
    assert calls[1].id.startswith("call_")


async def test_tool_calls_streaming_async(mock_openai: MockOpenAIServer) -> None:
    mock_openai.enqueue_tool_call("lookup_order", {"order_id": "A1"}, text="Checking.")
    async with (
        openai.AsyncOpenAI(base_url=mock_openai.base_url, api_key="test-key") as sdk,
        sdk.chat.completions.stream(model="m", messages=MESSAGES) as stream,
    ):
        final = await stream.get_final_completion()

    message = final.choices[0].message
    assert message.content == "Checking."
    [call] = message.tool_calls or []
    assert call.function.name == "lookup_order" and call.function.arguments == '{"order_id": "A1"}'


def test_429_with_retry_after_is_retried(mock_openai: MockOpenAIServer) -> None:
    mock_openai.fail_next(429, times=2, retry_after=0.1)
    mock_openai.enqueue_text("finally")

    completion = client(mock_openai, max_retries=2).chat.completions.create(
        model="m", messages=MESSAGES
    )

    assert completion.choices[0].message.content == "finally"
    requests = mock_openai.requests
    assert len(requests) == 3
    assert [r.headers["x-stainless-retry-count"] for r in requests] == ["0", "1", "2"]
    gaps = [b.received_at - a.received_at for a, b in itertools.pairwise(requests)]
    assert all(gap >= 0.1 for gap in gaps)


def test_errors_surface_in_openai_shape(mock_openai: MockOpenAIServer) -> None:
    mock_openai.fail_next(429)
    mock_openai.fail_next(500)
    sdk = client(mock_openai, max_retries=0)

    with pytest.raises(openai.RateLimitError) as rate_limited:
        sdk.chat.completions.create(model="m", messages=MESSAGES)
    with pytest.raises(openai.InternalServerError):
        sdk.chat.completions.create(model="m", messages=MESSAGES)

    assert rate_limited.value.code == "rate_limit_exceeded"
    assert rate_limited.value.type == "requests"


def test_slow_response_hits_the_client_timeout(mock_openai: MockOpenAIServer) -> None:
    mock_openai.slow_next(2.0)
    started = time.monotonic()

    with pytest.raises(openai.APITimeoutError):
        client(mock_openai, max_retries=0, timeout=0.2).chat.completions.create(
            model="m", messages=MESSAGES
        )

    assert time.monotonic() - started < 1.5


def test_malformed_responses_raise(mock_openai: MockOpenAIServer) -> None:
    mock_openai.malformed_next(times=2)
    sdk = client(mock_openai, max_retries=0)

    with pytest.raises(ValueError, match="Unterminated string"):
        sdk.chat.completions.create(model="m", messages=MESSAGES)
    with pytest.raises(ValueError, match="Expecting value"):
        list(sdk.chat.completions.create(model="m", messages=MESSAGES, stream=True))


def test_disconnect_mid_stream(mock_openai: MockOpenAIServer) -> None:
    mock_openai.disconnect_next(after_events=2)
    mock_openai.enqueue_text("a long answer that never fully arrives")
    received: list[str] = []

    with pytest.raises(openai.APIConnectionError):
        for chunk in client(mock_openai, max_retries=0).chat.completions.create(
            model="m", messages=MESSAGES, stream=True
        ):
            received.append(chunk.choices[0].delta.content or "")

    assert received == ["", "a"]
    assert mock_openai.pending_replies == 1


def test_models_list(mock_openai: MockOpenAIServer) -> None:
    models = client(mock_openai).models.list()

    assert "gpt-4o-mini" in [m.id for m in models.data]


@pytest.mark.parametrize("encoding_format", ["float", None])
def test_embeddings_match_deterministic_embeddings(
    mock_openai: MockOpenAIServer, encoding_format: str | None
) -> None:
    extra: dict[str, Any] = {"encoding_format": encoding_format} if encoding_format else {}

    response = client(mock_openai).embeddings.create(
        model="text-embedding-3-small", input=["refund policy", "shipping"], dimensions=16, **extra
    )

    expected = DeterministicEmbeddings(dims=16).embed_documents(["refund policy", "shipping"])
    # Without encoding_format the SDK asks for base64 (float32) and decodes it.
    for got, want in zip([d.embedding for d in response.data], expected, strict=True):
        assert got == pytest.approx(want, abs=1e-6)
    assert response.usage.prompt_tokens == 3
    assert mock_openai.requests[0].body["encoding_format"] == (encoding_format or "base64")
