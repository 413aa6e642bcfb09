"""dockyard as an LLM gateway: /v1/chat/completions and /v1/models serve the models under
``models:`` straight through the model chain, as the official openai client sees it,
against the mock OpenAI and Anthropic servers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from dockyard.errors import ConfigError
from dockyard.runtime.graphs import load_registry
from dockyard.settings import load_settings
from dockyard.testing.mock_providers import MockAnthropicServer, MockOpenAIServer
from dockyard.testing.pytest_plugin import mock_anthropic, mock_openai
from tests.conftest import FIXTURE_PROJECT, LiveServer

__all__ = ["mock_anthropic", "mock_openai"]  # the fixtures, for this module's tests

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def project(root: Path, openai_url: str, anthropic_url: str, **extra: Any) -> Path:
    (root / "key").write_text("test-key")
    config = {
        "graphs": {"trivial": str(FIXTURE_PROJECT / "graphs.py") + ":trivial"},
        "models": {
            "default": {
                "model": "openai:gpt-gate",
                "base_url": openai_url,
                "api_key_file": "key",
                "fallbacks": ["backup"],
                "retry": {"max_attempts": 1},
            },
            "backup": {
                "model": "anthropic:claude-gate",
                "base_url": anthropic_url,
                "api_key_file": "key",
            },
        },
        **extra,
    }
    path = root / "dockyard.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def gateway(
    tmp_path: Path, mock_openai: MockOpenAIServer, mock_anthropic: MockAnthropicServer
) -> Iterator[openai.OpenAI]:
    config = project(tmp_path, mock_openai.base_url, mock_anthropic.base_url)
    server = LiveServer(tmp_path / "data", config=config).start()
    try:
        yield openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-client", max_retries=0)
    finally:
        server.stop()


def sent(mock: MockOpenAIServer | MockAnthropicServer) -> list[dict[str, Any]]:
    return [r.body for r in mock.requests if r.method == "POST"]


def test_a_model_answers_with_usage(gateway: openai.OpenAI, mock_openai: MockOpenAIServer) -> None:
    mock_openai.enqueue_text("Sunny in Seoul.", input_tokens=12, output_tokens=4)
    reply = gateway.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": "weather in Seoul?"}],
        temperature=0.2,
        max_tokens=50,
    )
    assert reply.choices[0].message.content == "Sunny in Seoul."
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (12, 4)
    (body,) = sent(mock_openai)
    assert body["model"] == "gpt-gate"
    assert body["temperature"] == 0.2  # passed on (langchain-openai names max_tokens anew)
    assert body.get("max_completion_tokens", body.get("max_tokens")) == 50
    assert body["messages"][-1]["content"] == "weather in Seoul?"


def test_tools_and_tool_choice_pass_through(
    gateway: openai.OpenAI, mock_openai: MockOpenAIServer
) -> None:
    mock_openai.enqueue_tool_call("get_weather", {"city": "Seoul"})
    reply = gateway.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": "weather in Seoul?"}],
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="required",
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Seoul"}  # type: ignore[union-attr]
    (body,) = sent(mock_openai)
    assert body["tools"][0]["function"]["name"] == "get_weather"
    assert body["tool_choice"] == "required"


def test_streaming_with_usage(gateway: openai.OpenAI, mock_openai: MockOpenAIServer) -> None:
    mock_openai.enqueue_text("one two three", input_tokens=5, output_tokens=3)
    chunks = list(
        gateway.chat.completions.create(
            model="default",
            messages=[{"role": "user", "content": "count"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 8


def test_the_fallback_answers_when_the_model_fails(
    gateway: openai.OpenAI, mock_openai: MockOpenAIServer, mock_anthropic: MockAnthropicServer
) -> None:
    mock_openai.fail_next(500)
    reply = gateway.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "still there?"}]
    )
    assert reply.choices[0].message.content == "still there?"  # the Anthropic mock echoes
    assert len(sent(mock_openai)) == 1 and len(sent(mock_anthropic)) == 1


def test_response_format_only_on_openai_models(
    gateway: openai.OpenAI, mock_openai: MockOpenAIServer
) -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    mock_openai.enqueue_text('{"ok": true}')
    reply = gateway.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": "json please"}],
        response_format=schema,  # type: ignore[arg-type]
    )
    assert reply.choices[0].message.content == '{"ok": true}'
    assert sent(mock_openai)[0]["response_format"] == schema
    with pytest.raises(openai.UnprocessableEntityError) as err:
        gateway.chat.completions.create(
            model="backup",
            messages=[{"role": "user", "content": "json please"}],
            response_format=schema,  # type: ignore[arg-type]
        )
    assert err.value.code == "unsupported_field"


def test_models_are_listed_and_assistants_refuse_tools(gateway: openai.OpenAI) -> None:
    ids = [m.id for m in gateway.models.list().data]
    assert {"default", "backup", "trivial"} <= set(ids)
    assert gateway.models.retrieve("backup").model_extra["dockyard"]["model"] == (
        "anthropic:claude-gate"
    )
    with pytest.raises(openai.UnprocessableEntityError) as err:
        gateway.chat.completions.create(
            model="trivial",
            messages=[{"role": "user", "content": "hi"}],
            tools=[WEATHER],  # type: ignore[list-item]
        )
    assert err.value.code == "unsupported_field" and "own tools" in str(err.value)


def test_a_model_keeps_no_thread(gateway: openai.OpenAI) -> None:
    base = str(gateway.base_url).rstrip("/")
    r = httpx.post(
        f"{base}/chat/completions",
        json={"model": "default", "messages": [{"role": "user", "content": "hi"}]},
        headers={"X-Thread-Id": "t1", "Authorization": "Bearer x"},
    )
    assert r.status_code == 422 and "keeps no thread" in r.text


def test_pii_never_reaches_the_provider(
    tmp_path: Path, mock_openai: MockOpenAIServer, mock_anthropic: MockAnthropicServer
) -> None:
    config = project(tmp_path, mock_openai.base_url, mock_anthropic.base_url, policies={"pii": {}})
    server = LiveServer(tmp_path / "data", config=config).start()
    try:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk", max_retries=0)
        reply = client.chat.completions.create(
            model="default",
            messages=[{"role": "user", "content": "mail hong@example.co.kr, 010-1234-5678"}],
        )
    finally:
        server.stop()
    (body,) = sent(mock_openai)
    text = json.dumps(body)
    assert "hong@example.co.kr" not in text and "010-1234-5678" not in text
    assert "hong@example.co.kr" not in (reply.choices[0].message.content or "")


def test_a_graph_and_a_model_of_one_name_stop_start_up(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        project_dir=tmp_path,
        graphs={"backup": str(FIXTURE_PROJECT / "graphs.py") + ":trivial"},
        models={"backup": "offline:support"},
    )
    with pytest.raises(ConfigError, match=r"share the name\(s\) \['backup'\]"):
        load_registry(settings)


def test_a_streamed_fallback_ends_as_its_provider_says(
    gateway: openai.OpenAI, mock_openai: MockOpenAIServer, mock_anthropic: MockAnthropicServer
) -> None:
    mock_openai.fail_next(500)
    mock_anthropic.enqueue_tool_call("get_weather", {"city": "Seoul"}, text="Let me look.")
    chunks = list(
        gateway.chat.completions.create(
            model="default",
            messages=[{"role": "user", "content": "weather in Seoul?"}],
            tools=[WEATHER],  # type: ignore[list-item]
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "tool_calls"  # Anthropic's stop_reason tool_use
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert calls[0].function is not None and calls[0].function.name == "get_weather"
    args = "".join(tc.function.arguments or "" for tc in calls if tc.function is not None)
    assert json.loads(args) == {"city": "Seoul"}
    usage = chunks[-1].usage
    assert usage is not None and usage.total_tokens > 0


async def test_a_stream_ends_with_its_last_reason_and_summed_usage() -> None:
    from langchain_core.messages import AIMessageChunk

    from dockyard.api.gateway import _events

    def usage(n: int) -> Any:
        return {"input_tokens": n, "output_tokens": n, "total_tokens": 2 * n}

    async def rest() -> Any:
        # Two parts saying how it ended: adding the messages up made that "stoplength".
        yield AIMessageChunk(content=" there", response_metadata={"finish_reason": "stop"})
        yield AIMessageChunk(content="", response_metadata={"finish_reason": "length"})
        yield AIMessageChunk(content="", usage_metadata=usage(2))

    first = AIMessageChunk(content="hi", usage_metadata=usage(1))
    events = [e async for e in _events(rest(), first, "default", "cid", True)]
    payloads = [json.loads(e[len(b"data: ") :]) for e in events if e != b"data: [DONE]\n\n"]
    ends = [p["choices"][0]["finish_reason"] for p in payloads if p["choices"]]
    assert ends[-1] == "length"
    assert payloads[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
    text = "".join(p["choices"][0]["delta"].get("content", "") for p in payloads if p["choices"])
    assert text == "hi there"
