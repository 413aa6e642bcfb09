"""Behaviour shared by every mock provider server: lifecycle, scripting, recording."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import httpx
import openai
import pytest

from dockyard.testing import MockAnthropicServer, MockOpenAIServer, MockProviderServer


def chat(srv: MockOpenAIServer, text: str = "hi", **options: object) -> str | None:
    sdk = openai.OpenAI(base_url=srv.base_url, api_key="k", **options)  # type: ignore[arg-type]
    completion = sdk.chat.completions.create(
        model="m", messages=[{"role": "user", "content": text}]
    )
    return completion.choices[0].message.content


def test_faults_are_consumed_in_order_and_keep_the_reply_queued(
    mock_openai: MockOpenAIServer,
) -> None:
    mock_openai.fail_next(500)
    mock_openai.slow_next(0.05)
    mock_openai.enqueue("first", "second")

    with pytest.raises(openai.InternalServerError):
        chat(mock_openai, max_retries=0)
    assert mock_openai.pending_replies == 2  # a failed attempt does not use up a reply
    assert chat(mock_openai) == "first"  # the slow one succeeds and consumes it
    assert chat(mock_openai) == "second"
    assert chat(mock_openai, "now echo me") == "now echo me"


def test_reset_forgets_replies_faults_and_requests(mock_openai: MockOpenAIServer) -> None:
    mock_openai.enqueue_text("never sent")
    mock_openai.fail_next(429, times=3)
    mock_openai.reset()

    assert chat(mock_openai, "echo") == "echo"
    assert len(mock_openai.requests) == 1


def test_token_counts_can_be_scripted(mock_openai: MockOpenAIServer) -> None:
    mock_openai.enqueue_text("short", input_tokens=1000, output_tokens=250)
    sdk = openai.OpenAI(base_url=mock_openai.base_url, api_key="k")

    usage = sdk.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}]
    ).usage

    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (1000, 250)


@pytest.mark.parametrize(
    ("server_class", "path", "body", "expected"),
    [
        (
            MockAnthropicServer,
            "/v1/messages",
            {"model": "m", "messages": []},
            {"type": "error", "error": {"type": "invalid_request_error"}},
        ),
        (
            MockOpenAIServer,
            "/v1/chat/completions",
            {"model": "m"},
            {"error": {"type": "invalid_request_error"}},
        ),
    ],
)
def test_invalid_requests_get_a_400_in_the_provider_shape(
    server_class: type[MockProviderServer], path: str, body: dict[str, object], expected: dict
) -> None:
    with server_class() as srv:
        response = httpx.post(srv.url + path, json=body)

    assert response.status_code == 400
    payload = response.json()
    for key, value in expected.items():
        if isinstance(value, dict):
            assert value.items() <= payload[key].items()
        else:
            assert payload[key] == value
    assert srv.requests[0].body == body


def test_combined_server_speaks_both_apis() -> None:
    with MockProviderServer() as srv:
        srv.enqueue("from openai", "from anthropic")
        openai_reply = httpx.post(
            srv.url + "/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
        ).json()
        anthropic_reply = httpx.post(
            srv.url + "/v1/messages",
            json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
        ).json()

    assert openai_reply["choices"][0]["message"]["content"] == "from openai"
    assert anthropic_reply["content"][0]["text"] == "from anthropic"


async def test_async_context_manager() -> None:
    async with openai.AsyncOpenAI(base_url="http://unused", api_key="k", max_retries=0) as sdk:
        async with MockOpenAIServer() as srv:
            sdk = sdk.with_options(base_url=srv.base_url)
            completion = await sdk.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "async hello"}]
            )

        assert completion.choices[0].message.content == "async hello"
        with pytest.raises(openai.APIConnectionError):
            await sdk.models.list()


def test_addresses_need_a_running_server() -> None:
    server = MockAnthropicServer()

    with pytest.raises(RuntimeError, match="not started"):
        _ = server.base_url
    assert repr(server) == "MockAnthropicServer(not started)"


def test_standalone_cli_prints_its_urls() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "dockyard.testing.mock_providers", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            anthropic_line = process.stdout.readline()
            openai_line = process.stdout.readline()
            openai_url = openai_line.split(": ", 1)[1].strip()
            models = httpx.get(openai_url + "/models").json()
        finally:
            process.terminate()

    assert anthropic_line.startswith("anthropic base_url: http://127.0.0.1:")
    assert openai_url.endswith("/v1")
    assert models["object"] == "list"


def test_latency_delays_every_answer_and_adds_to_a_slow_fault() -> None:
    with MockOpenAIServer(latency=0.08) as srv:
        sdk = openai.OpenAI(base_url=srv.base_url, api_key="k", max_retries=0)
        times = []
        for _ in range(2):
            start = time.perf_counter()
            chat_once(sdk)
            times.append(time.perf_counter() - start)
        srv.slow_next(0.1)
        start = time.perf_counter()
        chat_once(sdk)
        slow = time.perf_counter() - start
        start = time.perf_counter()
        sdk.models.list()  # not a model request: answered at once
        listing = time.perf_counter() - start

    assert all(t >= 0.08 for t in times)
    assert slow >= 0.18
    assert listing < 0.08


def test_latency_holds_back_a_stream_until_its_first_event() -> None:
    with MockOpenAIServer(latency=0.08) as srv:
        sdk = openai.OpenAI(base_url=srv.base_url, api_key="k", max_retries=0)
        start = time.perf_counter()
        stream = sdk.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "stream me"}], stream=True
        )
        first = next(iter(stream))
        waited = time.perf_counter() - start
        text = (first.choices[0].delta.content or "") + "".join(
            c.choices[0].delta.content or "" for c in stream if c.choices
        )

    assert waited >= 0.08
    assert text == "stream me"


def test_latency_is_concurrent_not_serial() -> None:
    async def burst(url: str) -> float:
        async with openai.AsyncOpenAI(base_url=url, api_key="k", max_retries=0) as sdk:
            start = time.perf_counter()
            await asyncio.gather(
                *(
                    sdk.chat.completions.create(
                        model="m", messages=[{"role": "user", "content": str(i)}]
                    )
                    for i in range(10)
                )
            )
            return time.perf_counter() - start

    with MockOpenAIServer(latency=0.2) as srv:
        elapsed = asyncio.run(burst(srv.base_url))

    assert 0.2 <= elapsed < 1.0  # ten at once take about one latency, not ten


def test_negative_latency_is_refused() -> None:
    with pytest.raises(ValueError, match="latency must be >= 0"):
        MockOpenAIServer(latency=-0.01)


def test_requests_can_go_unrecorded() -> None:
    with MockOpenAIServer(record_requests=False) as srv:
        assert chat(srv, "not kept") == "not kept"
        assert srv.requests == []


def test_standalone_cli_takes_a_latency() -> None:
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dockyard.testing.mock_providers",
            "--provider",
            "openai",
            "--latency-ms",
            "100",
            "--no-record",
        ],
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().split(": ", 1)[1].strip()
            sdk = openai.OpenAI(base_url=url, api_key="k", max_retries=0)
            start = time.perf_counter()
            chat_once(sdk)
            waited = time.perf_counter() - start
        finally:
            process.terminate()

    assert waited >= 0.1


def chat_once(sdk: openai.OpenAI) -> None:
    reply = sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert reply.choices[0].message.content == "x"


def test_answers_on_a_kept_alive_connection_are_not_held_back() -> None:
    # Nagle's algorithm on the server's sockets held every answer after a connection's
    # first until the client's delayed ACK, 40 ms or more on Linux.
    with MockOpenAIServer() as srv, httpx.Client() as http:
        times = []
        for _ in range(7):
            start = time.perf_counter()
            assert http.get(srv.base_url + "/models").status_code == 200
            times.append(time.perf_counter() - start)

    assert sorted(times[1:])[3] < 0.03  # the median of the kept-alive ones
