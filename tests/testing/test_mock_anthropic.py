"""The real ``anthropic`` SDK against MockAnthropicServer."""

from __future__ import annotations

import itertools
import time

import anthropic
import httpx
import pytest

from dockyard.testing import MockAnthropicServer, MockReply, MockToolCall

MESSAGES = [{"role": "user", "content": "Where is my order?"}]


def _body_cut_off_errors() -> tuple[type[Exception], ...]:
    """What the SDK's transport raises when the server closes mid-body: anthropic reads
    through httpx2 since 1.0, through httpx before."""
    errors: list[type[Exception]] = [httpx.RemoteProtocolError]
    try:
        import httpx2
    except ImportError:
        return tuple(errors)
    return (*errors, httpx2.RemoteProtocolError)


BODY_CUT_OFF = _body_cut_off_errors()


def client(srv: MockAnthropicServer, **options: object) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=srv.base_url, api_key="test-key", **options)  # type: ignore[arg-type]


def test_text_reply_usage_and_recorded_request(mock_anthropic: MockAnthropicServer) -> None:
    mock_anthropic.enqueue_text("It shipped yesterday.")

    message = client(mock_anthropic).messages.create(
        model="claude-test", max_tokens=100, system="Be brief.", messages=MESSAGES
    )

    assert message.content[0].type == "text" and message.content[0].text == "It shipped yesterday."
    assert message.model == "claude-test" and message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (6, 3)
    [request] = mock_anthropic.requests
    assert request.path == "/v1/messages" and request.model == "claude-test"
    # anthropic 2.x sends the key as a bearer token; api_key reads either header.
    assert request.api_key == "test-key"
    assert request.body["system"] == "Be brief."


def test_empty_queue_echoes_the_last_message(mock_anthropic: MockAnthropicServer) -> None:
    message = client(mock_anthropic).messages.create(
        model="m", max_tokens=10, messages=[{"role": "user", "content": "ping me back"}]
    )

    assert message.content[0].type == "text" and message.content[0].text == "ping me back"


def test_streamed_text_arrives_in_pieces(mock_anthropic: MockAnthropicServer) -> None:
    mock_anthropic.enqueue_text("It shipped yesterday morning.")

    with client(mock_anthropic).messages.stream(
        model="m", max_tokens=100, messages=MESSAGES
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()

    assert pieces == ["It", " shipped", " yesterday", " morning."]
    assert final.usage.output_tokens == 4 and final.usage.input_tokens == 4
    assert mock_anthropic.requests[0].stream


def test_raw_stream_event_sequence(mock_anthropic: MockAnthropicServer) -> None:
    mock_anthropic.enqueue_tool_call("lookup_order", {"order_id": "A1"}, text="Checking.")

    events = list(
        client(mock_anthropic).messages.create(
            model="m", max_tokens=100, messages=MESSAGES, stream=True
        )
    )

    types = [e.type for e in events]
    assert types[0] == "message_start" and types[-2:] == ["message_delta", "message_stop"]
    assert types.count("content_block_start") == types.count("content_block_stop") == 2
    deltas = {e.delta.type for e in events if e.type == "content_block_delta"}
    assert deltas == {"text_delta", "input_json_delta"}


def test_tool_use_non_streaming(mock_anthropic: MockAnthropicServer) -> None:
    mock_anthropic.enqueue(
        MockReply(
            tool_calls=[
                MockToolCall("lookup_order", {"order_id": "A1"}, id="toolu_1"),
                MockToolCall("lookup_order", {"order_id": "B2"}),
            ]
        )
    )

    message = client(mock_anthropic).messages.create(model="m", max_tokens=100, messages=MESSAGES)

    assert message.stop_reason == "tool_use"
    blocks = [b for b in message.content if b.type == "tool_use"]
    assert next((b.id, b.name, b.input) for b in blocks) == (
        "toolu_1",
        "lookup_order",
        {"order_id": "A1"},
    )
    assert blocks[1].id.startswith("toolu_") and blocks[1].input == {"order_id": "B2"}


async def test_tool_use_streaming_async(mock_anthropic: MockAnthropicServer) -> None:
    mock_anthropic.enqueue_tool_call("lookup_order", {"order_id": "A1", "verbose": True})
    async with (
        anthropic.AsyncAnthropic(base_url=mock_anthropic.base_url, api_key="test-key") as sdk,
        sdk.messages.stream(model="m", max_tokens=100, messages=MESSAGES) as stream,
    ):
        final = await stream.get_final_message()

    [block] = final.content
    assert block.type == "tool_use" and block.input == {"order_id": "A1", "verbose": True}
    assert final.stop_reason == "tool_use"


def test_429_with_retry_after_is_retried(mock_anthropic: MockAnthropicServer) -> None:
    mock_anthropic.fail_next(429, times=2, retry_after=0.1)
    mock_anthropic.enqueue_text("finally")

    message = client(mock_anthropic, max_retries=2).messages.create(
        model="m", max_tokens=10, messages=MESSAGES
    )

    assert message.content[0].type == "text" and message.content[0].text == "finally"
    requests = mock_anthropic.requests
    assert len(requests) == 3
    gaps = [b.received_at - a.received_at for a, b in itertools.pairwise(requests)]
    assert all(gap >= 0.1 for gap in gaps)


def test_429_error_shape_when_retries_run_out(mock_anthropic: MockAnthropicServer) -> None:
    mock_anthropic.fail_next(429, retry_after=3)

    with pytest.raises(anthropic.RateLimitError) as caught:
        client(mock_anthropic, max_retries=0).messages.create(
            model="m", max_tokens=10, messages=MESSAGES
        )

    assert caught.value.response.headers["retry-after"] == "3"
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert mock_anthropic.pending_replies == 0 and len(mock_anthropic.requests) == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [(529, anthropic.OverloadedError), (500, anthropic.InternalServerError)],
)
def test_server_errors_surface_as_sdk_exceptions(
    mock_anthropic: MockAnthropicServer, status: int, error: type[Exception]
) -> None:
    mock_anthropic.fail_next(status)

    with pytest.raises(error):
        client(mock_anthropic, max_retries=0).messages.create(
            model="m", max_tokens=10, messages=MESSAGES
        )


def test_slow_response_hits_the_client_timeout(mock_anthropic: MockAnthropicServer) -> None:
    mock_anthropic.slow_next(2.0)
    started = time.monotonic()

    with pytest.raises(anthropic.APITimeoutError):
        client(mock_anthropic, max_retries=0, timeout=0.2).messages.create(
            model="m", max_tokens=10, messages=MESSAGES
        )

    assert time.monotonic() - started < 1.5


def test_slow_response_within_timeout_succeeds(mock_anthropic: MockAnthropicServer) -> None:
    mock_anthropic.slow_next(0.2)
    mock_anthropic.enqueue_text("worth the wait")
    started = time.monotonic()

    message = client(mock_anthropic, max_retries=0).messages.create(
        model="m", max_tokens=10, messages=MESSAGES
    )

    assert message.content[0].type == "text" and message.content[0].text == "worth the wait"
    assert time.monotonic() - started >= 0.2


def test_malformed_responses_raise(mock_anthropic: MockAnthropicServer) -> None:
    mock_anthropic.malformed_next(times=2)
    sdk = client(mock_anthropic, max_retries=0)

    with pytest.raises(ValueError, match="Unterminated string"):
        sdk.messages.create(model="m", max_tokens=10, messages=MESSAGES)
    with pytest.raises(ValueError, match="Expecting value"):
        list(sdk.messages.create(model="m", max_tokens=10, messages=MESSAGES, stream=True))


def test_disconnect_mid_stream(mock_anthropic: MockAnthropicServer) -> None:
    mock_anthropic.disconnect_next(after_events=3)
    mock_anthropic.enqueue_text("a long answer that never fully arrives")
    received: list[str] = []

    with pytest.raises((anthropic.APIConnectionError, *BODY_CUT_OFF)) as caught:
        for event in client(mock_anthropic, max_retries=0).messages.create(
            model="m", max_tokens=10, messages=MESSAGES, stream=True
        ):
            received.append(event.type)

    # Up to anthropic 2.16 the transport's own exception left the stream; since 2.17 it
    # is wrapped in APIConnectionError (checked with 0.120, 1.17, 2.16 and 2.17). Either
    # way it must be the body cut off.
    error = caught.value
    cause = error if isinstance(error, BODY_CUT_OFF) else error.__cause__
    assert isinstance(cause, BODY_CUT_OFF), repr(error)
    assert "incomplete chunked read" in str(cause)
    assert received[0] == "message_start"
    assert "message_stop" not in received
    assert mock_anthropic.pending_replies == 1  # the cut-off reply stays for a retry


def test_disconnect_before_body_is_retried(mock_anthropic: MockAnthropicServer) -> None:
    mock_anthropic.disconnect_next()
    mock_anthropic.enqueue_text("second time lucky")

    message = client(mock_anthropic, max_retries=1).messages.create(
        model="m", max_tokens=10, messages=MESSAGES
    )

    assert message.content[0].type == "text" and message.content[0].text == "second time lucky"
    assert len(mock_anthropic.requests) == 2


def test_wrong_api_key_is_rejected() -> None:
    with MockAnthropicServer(api_key="right-key") as srv:
        with pytest.raises(anthropic.AuthenticationError):
            anthropic.Anthropic(
                base_url=srv.base_url, api_key="wrong", max_retries=0
            ).messages.create(model="m", max_tokens=10, messages=MESSAGES)
        ok = anthropic.Anthropic(base_url=srv.base_url, api_key="right-key").messages.create(
            model="m", max_tokens=10, messages=MESSAGES
        )
    assert ok.content


def test_count_tokens(mock_anthropic: MockAnthropicServer) -> None:
    counted = client(mock_anthropic).messages.count_tokens(model="m", messages=MESSAGES)

    assert counted.input_tokens == 4
