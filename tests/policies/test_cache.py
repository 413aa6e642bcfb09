"""policies.cache: the key, the stores, the layer's rules, and the cache as a user of the
gateway sees it (the openai client against dockyard against the mock OpenAI server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph_sdk import get_sync_client
from pydantic import ValidationError

from dockyard.errors import ConfigError
from dockyard.policies.cache import (
    CacheLayer,
    MemoryCacheStore,
    cache_key,
    open_cache_store,
)
from dockyard.policies.cache_redis import RedisCacheStore
from dockyard.providers.wrapper import ModelCall
from dockyard.runtime.usage import Usage, UsageTally
from dockyard.settings import CacheConfig, PoliciesConfig, load_settings
from dockyard.testing import MockAnthropicServer, MockOpenAIServer
from tests.api.test_gateway import WEATHER, project, sent
from tests.conftest import LiveServer
from tests.policies.test_resilience import Build, build, chat_requests
from tests.redis_server import REDIS_URL, fresh_prefix

__all__ = ["build"]  # the fixture, for this module's tests

ASK = [SystemMessage("Be brief."), HumanMessage("weather in Seoul?")]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_call(
    messages: list[BaseMessage] | None = None,
    name: str = "default",
    stop: list[str] | None = None,
    config: dict[str, Any] | None = None,
    **kwargs: Any,
) -> ModelCall:
    model = GenericFakeChatModel(messages=iter([]))
    kwargs.setdefault("temperature", 0)
    return ModelCall(
        name, model, list(ASK if messages is None else messages), stop, kwargs, config=config or {}
    )


class Provider:
    """The rest of the chain: answers each call anew, counting them."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, call: ModelCall) -> ChatResult:
        self.calls += 1
        message = AIMessage(
            f"answer {self.calls}",
            id=f"msg_{self.calls}",
            usage_metadata={"input_tokens": 10, "output_tokens": 3, "total_tokens": 13},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


def layer(**config: Any) -> CacheLayer:
    cfg = CacheConfig.model_validate({"ttl_seconds": 60, **config})
    return CacheLayer(cfg, MemoryCacheStore(cfg.max_entries))


def answer(result: ChatResult) -> AIMessage:
    message = result.generations[0].message
    assert isinstance(message, AIMessage)
    return message


# -- the key --------------------------------------------------------------------------------


def test_the_key_is_stable_and_canonical() -> None:
    one = make_call(tools=[{"type": "function", "function": {"name": "a"}}], top_p=0.5)
    # The same call with its arguments in another order: canonical JSON sorts the keys.
    other = make_call(top_p=0.5, tools=[{"function": {"name": "a"}, "type": "function"}])
    assert cache_key(one) == cache_key(other)
    assert len(cache_key(one)) == 64


@pytest.mark.parametrize(
    "changed",
    [
        {"messages": [HumanMessage("weather in Busan?")]},
        {"messages": [SystemMessage("Be brief."), AIMessage("weather in Seoul?")]},
        {"name": "backup"},
        {"stop": ["\n"]},
        {"temperature": 0.0, "top_p": 0.9},
        {"tools": [{"type": "function", "function": {"name": "get_weather"}}]},
        {"tool_choice": "required"},
        {"response_format": {"type": "json_object"}},
    ],
)
def test_the_key_differs_by_messages_model_tools_and_params(changed: dict[str, Any]) -> None:
    assert cache_key(make_call(**changed)) != cache_key(make_call())


def test_the_key_covers_tool_calls_and_tool_results() -> None:
    asked = AIMessage("", tool_calls=[{"name": "f", "args": {"x": 1}, "id": "c1"}])
    other = AIMessage("", tool_calls=[{"name": "f", "args": {"x": 2}, "id": "c1"}])
    assert cache_key(make_call([asked])) != cache_key(make_call([other]))


# -- the stores -----------------------------------------------------------------------------


def test_an_entry_expires_after_its_ttl() -> None:
    clock = Clock()
    store = MemoryCacheStore(10, clock)
    store.set("k", "v", 60)
    clock.now += 59.9
    assert store.get("k") == "v"
    clock.now += 0.1
    assert store.get("k") is None
    assert len(store) == 0


def test_the_least_recently_used_entry_goes_first() -> None:
    store = MemoryCacheStore(2)
    store.set("a", "1", 60)
    store.set("b", "2", 60)
    assert store.get("a") == "1"  # now b is the least recently used
    store.set("c", "3", 60)
    assert (store.get("a"), store.get("b"), store.get("c")) == ("1", None, "3")


def test_settings_choose_the_store(tmp_path: Path) -> None:
    path = tmp_path / "dockyard.yaml"
    path.write_text(yaml.safe_dump({"policies": {"cache": {"ttl_seconds": 5, "max_entries": 7}}}))
    settings = load_settings(path)
    config = settings.policies.cache
    assert config is not None
    memory = open_cache_store(settings, config)
    assert isinstance(memory, MemoryCacheStore) and memory.max_entries == 7
    in_redis = settings.model_copy(update={"redis_url": REDIS_URL})
    with pytest.raises(ConfigError, match="max_entries"):  # Redis would not honour it
        open_cache_store(in_redis, config)
    shared = open_cache_store(in_redis, CacheConfig(ttl_seconds=5))
    assert isinstance(shared, RedisCacheStore)


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ({}, "ttl_seconds"),
        ({"ttl_seconds": 0}, "ttl_seconds"),
        ({"ttl_seconds": 5, "max_entries": 0}, "max_entries"),
        ({"ttl_seconds": 5, "ttl": 5}, "ttl"),
    ],
)
def test_a_bad_cache_block_is_refused_naming_the_field(
    block: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ValidationError, match=expected):
        PoliciesConfig.model_validate({"cache": block})


# -- the layer's rules ------------------------------------------------------------------------


def test_a_repeated_call_is_answered_from_the_cache() -> None:
    cache, provider = layer(), Provider()
    first = answer(cache.generate(make_call(), provider))
    second = answer(cache.generate(make_call(), provider))
    assert provider.calls == 1
    assert first.response_metadata["dockyard_cache"] == "miss"
    assert second.response_metadata["dockyard_cache"] == "hit"
    assert second.content == first.content == "answer 1"
    assert second.usage_metadata == {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    # A hit gets the id LangChain gives each call, not the stored answer's (a conversation
    # holding both would keep one: LangGraph's add_messages replaces by id).
    assert first.id == "msg_1" and second.id is None
    answer(cache.generate(make_call([HumanMessage("another")]), provider))
    assert provider.calls == 2


@pytest.mark.parametrize(
    ("temperature", "force", "cached"),
    [(0, False, True), (0.7, False, False), (None, False, False), (0.7, True, True)],
)
def test_sampled_calls_are_not_cached_unless_forced(
    temperature: float | None, force: bool, cached: bool
) -> None:
    cache, provider = layer(force=force), Provider()
    for _ in range(2):
        cache.generate(make_call(temperature=temperature), provider)
    assert provider.calls == (1 if cached else 2)


def test_the_model_s_own_temperature_counts() -> None:
    cache, provider = layer(), Provider()
    call = make_call()
    del call.kwargs["temperature"]
    zero = call.model.model_copy()
    object.__setattr__(zero, "temperature", 0.0)  # as ChatOpenAI(temperature=0) has it
    for _ in range(2):
        cache.generate(ModelCall(call.name, zero, call.messages, None, call.kwargs), provider)
    assert provider.calls == 1


def test_configurable_cache_false_bypasses() -> None:
    cache, provider = layer(), Provider()
    cache.generate(make_call(), provider)
    bypass = {"configurable": {"cache": False}}
    result = answer(cache.generate(make_call(config=bypass), provider))
    assert provider.calls == 2 and "dockyard_cache" not in result.response_metadata
    cache.generate(make_call(), provider)
    assert provider.calls == 2  # the bypassed call neither read nor replaced the entry


@pytest.mark.parametrize(("score", "stored"), [(0.5, False), (0.8, True), (0.95, True)])
def test_min_quality_stores_only_answers_the_hook_passes(score: float, stored: bool) -> None:
    cache, provider = layer(min_quality=0.8), Provider()
    seen: list[tuple[int, str]] = []

    def quality(messages: Any, message: AIMessage) -> float:
        seen.append((len(messages), message.text))
        return score

    cache.quality = quality
    for _ in range(2):
        cache.generate(make_call(), provider)
    assert provider.calls == (1 if stored else 2)
    assert seen[0] == (2, "answer 1")


def test_without_a_hook_min_quality_stores_nothing() -> None:
    # Only answers whose score passed are cached; with no scorer none has a score.
    cache, provider = layer(min_quality=0.8), Provider()
    for _ in range(2):
        cache.generate(make_call(), provider)
    assert provider.calls == 2
    assert layer(min_quality=None).quality is None  # no min_quality: everything is kept


# -- through the model chain ------------------------------------------------------------------


CACHED = {"cache": {"ttl_seconds": 60}}


async def test_a_hit_is_a_call_of_no_tokens_and_no_cost(
    build: Build, mock_openai: MockOpenAIServer
) -> None:
    model = build(policies=CACHED).get("default")
    mock_openai.enqueue_text("Sunny.", input_tokens=100, output_tokens=20)
    usage = Usage()
    config: Any = {"callbacks": [UsageTally(usage)]}
    for _ in range(2):
        reply = await model.ainvoke(ASK, config, temperature=0)
        assert reply.text == "Sunny."
    assert chat_requests(mock_openai) == 1
    assert (usage.model_calls, usage.cache_hits) == (2, 1)
    miss, hit = usage.calls
    assert (miss.input_tokens, miss.cache_hit) == (100, False)
    assert (hit.input_tokens, hit.output_tokens, hit.cost_usd, hit.cache_hit) == (0, 0, 0.0, True)
    assert usage.as_dict()["cache_hits"] == 1


async def test_a_streamed_miss_is_stored_and_a_hit_still_streams(
    build: Build, mock_openai: MockOpenAIServer
) -> None:
    model = build(policies=CACHED).get("default")
    mock_openai.enqueue_text("one two three four")
    first = [c async for c in model.astream(ASK, temperature=0)]
    second = [c async for c in model.astream(ASK, temperature=0)]
    assert chat_requests(mock_openai) == 1
    assert "".join(c.text for c in first) == "".join(c.text for c in second)
    assert len([c for c in second if c.text]) == 4  # word by word
    third = list(model.stream(ASK, temperature=0))  # the synchronous path, too
    assert [c.text for c in third] == [c.text for c in second]
    for chunks, mark in ((first, "miss"), (second, "hit"), (third, "hit")):
        whole = chunks[0]
        for chunk in chunks[1:]:
            whole = whole + chunk
        assert whole.response_metadata["dockyard_cache"] == mark


async def test_the_cache_in_redis_is_shared_by_every_registry(
    build: Build, mock_openai: MockOpenAIServer
) -> None:
    with fresh_prefix() as prefix:
        shared = {"redis_url": REDIS_URL, "redis_prefix": prefix, "policies": CACHED}
        one, other = build(**shared), build(**shared)
        mock_openai.enqueue_text("Cloudy.")
        assert (await one.get("default").ainvoke(ASK, temperature=0)).text == "Cloudy."
        reply = await other.get("default").ainvoke(ASK, temperature=0)
        assert reply.text == "Cloudy." and reply.response_metadata["dockyard_cache"] == "hit"
        assert chat_requests(mock_openai) == 1
        # The synchronous path reads the same entry.
        assert other.get("default").invoke(ASK, temperature=0).text == "Cloudy."
        assert chat_requests(mock_openai) == 1


# -- as a user of the gateway sees it ---------------------------------------------------------


@pytest.fixture
def gateway(
    tmp_path: Path, mock_openai: MockOpenAIServer, mock_anthropic: MockAnthropicServer
) -> Iterator[tuple[openai.OpenAI, str]]:
    policies = {"cache": {"ttl_seconds": 3600}}
    config = project(tmp_path, mock_openai.base_url, mock_anthropic.base_url, policies=policies)
    server = LiveServer(tmp_path / "data", config=config).start()
    try:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-client", max_retries=0)
        yield client, server.url
    finally:
        server.stop()


ASK_JSON: list[Any] = [{"role": "user", "content": "weather in Seoul?"}]


def test_a_repeated_request_reaches_the_provider_once(
    gateway: tuple[openai.OpenAI, str], mock_openai: MockOpenAIServer
) -> None:
    client, _ = gateway
    mock_openai.enqueue_text("Sunny in Seoul.", input_tokens=12, output_tokens=4)
    first = client.chat.completions.create(model="default", messages=ASK_JSON, temperature=0)
    second = client.chat.completions.create(model="default", messages=ASK_JSON, temperature=0)
    assert first.choices[0].message.content == second.choices[0].message.content
    assert second.choices[0].message.content == "Sunny in Seoul."
    assert len(sent(mock_openai)) == 1
    assert second.usage is not None and second.usage.total_tokens == 0  # a hit costs nothing


def test_the_bypass_header_reaches_the_provider(
    gateway: tuple[openai.OpenAI, str], mock_openai: MockOpenAIServer
) -> None:
    client, url = gateway
    mock_openai.enqueue_text("first")
    mock_openai.enqueue_text("fresh")
    client.chat.completions.create(model="default", messages=ASK_JSON, temperature=0)
    reply = client.chat.completions.create(
        model="default",
        messages=ASK_JSON,
        temperature=0,
        extra_headers={"X-Dockyard-Cache": "bypass"},
    )
    assert reply.choices[0].message.content == "fresh"
    assert len(sent(mock_openai)) == 2
    bad = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "default", "messages": ASK_JSON},
        headers={"X-Dockyard-Cache": "off", "Authorization": "Bearer sk-client"},
    )
    assert bad.status_code == 422
    assert "X-Dockyard-Cache" in bad.json()["error"]["message"]


def test_a_streamed_miss_then_a_streamed_hit_with_usage(
    gateway: tuple[openai.OpenAI, str], mock_openai: MockOpenAIServer
) -> None:
    client, _ = gateway
    mock_openai.enqueue_text("one two three", input_tokens=5, output_tokens=3)
    totals = []
    for _ in range(2):
        chunks = list(
            client.chat.completions.create(
                model="default",
                messages=ASK_JSON,
                temperature=0,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "one two three"
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
        assert chunks[-1].usage is not None
        totals.append(chunks[-1].usage.total_tokens)
    assert totals == [8, 0]
    assert len(sent(mock_openai)) == 1


def test_a_tool_call_answer_is_cached_with_its_call(
    gateway: tuple[openai.OpenAI, str], mock_openai: MockOpenAIServer
) -> None:
    client, _ = gateway
    mock_openai.enqueue_tool_call("get_weather", {"city": "Seoul"})
    tools: Any = [WEATHER]
    replies = [
        client.chat.completions.create(
            model="default", messages=ASK_JSON, temperature=0, tools=tools
        )
        for _ in range(2)
    ]
    assert len(sent(mock_openai)) == 1
    for reply in replies:
        assert reply.choices[0].finish_reason == "tool_calls"
        (call,) = reply.choices[0].message.tool_calls or []
        assert call.function.name == "get_weather"  # type: ignore[union-attr]
    # Without the tools it is another call.
    mock_openai.enqueue_text("It is sunny.")
    plain = client.chat.completions.create(model="default", messages=ASK_JSON, temperature=0)
    assert plain.choices[0].message.content == "It is sunny."


def test_streaming_a_hit_streams(
    gateway: tuple[openai.OpenAI, str], mock_openai: MockOpenAIServer
) -> None:
    client, _ = gateway
    mock_openai.enqueue_text("one two three")
    client.chat.completions.create(model="default", messages=ASK_JSON, temperature=0)
    chunks = list(
        client.chat.completions.create(
            model="default", messages=ASK_JSON, temperature=0, stream=True
        )
    )
    deltas = [c.choices[0].delta.content for c in chunks if c.choices]
    pieces = [d for d in deltas if d]
    assert "".join(pieces) == "one two three"
    assert len(pieces) == 3
    assert len(sent(mock_openai)) == 1


# -- as a user of the runs API sees it -------------------------------------------------------

AGENT = """
from dockyard import chat_model
from langgraph.graph import START, MessagesState, StateGraph


async def ask(state: MessagesState):
    model = chat_model("default").bind(temperature=0)
    first = await model.ainvoke(state["messages"])
    again = await model.ainvoke(state["messages"])
    return {"messages": [first, again]}


_g = StateGraph(MessagesState)
_g.add_node("ask", ask)
_g.add_edge(START, "ask")
graph = _g.compile()
"""


def test_runs_get_counts_the_hits_and_the_config_key_bypasses(
    tmp_path: Path, mock_openai: MockOpenAIServer
) -> None:
    (tmp_path / "agent.py").write_text(AGENT)
    config = {
        "graphs": {"asker": "./agent.py:graph"},
        "models": {"default": {"model": "openai:gpt-4o-mini", "base_url": mock_openai.base_url}},
        "policies": {"cache": {"ttl_seconds": 3600}},
    }
    (tmp_path / "dockyard.yaml").write_text(yaml.safe_dump(config))
    for _ in range(3):
        mock_openai.enqueue_text("fine thanks", input_tokens=1000, output_tokens=250)
    server = LiveServer(tmp_path / ".dockyard", config=tmp_path / "dockyard.yaml").start()
    try:
        client = get_sync_client(url=server.url)
        ask = {"messages": [{"role": "user", "content": "hello"}]}
        thread = client.threads.create()
        run = client.runs.create(thread["thread_id"], "asker", input=ask)
        client.runs.join(thread["thread_id"], run["run_id"])
        usage = client.runs.get(thread["thread_id"], run["run_id"])["usage"]
        assert (usage["model_calls"], usage["cache_hits"]) == (2, 1)
        assert (usage["input_tokens"], usage["output_tokens"]) == (1000, 250)
        assert [c["cache_hit"] for c in usage["calls"]] == [False, True]
        # The hit is a message of its own in the thread, not a replacement of the first.
        state = client.threads.get_state(thread["thread_id"])
        first, again = state["values"]["messages"][1:]
        assert first["content"] == again["content"] == "fine thanks"
        assert first["id"] != again["id"]
        assert chat_requests(mock_openai) == 1

        bypass: Any = {"configurable": {"cache": False}}
        other = client.threads.create()
        run = client.runs.create(other["thread_id"], "asker", input=ask, config=bypass)
        client.runs.join(other["thread_id"], run["run_id"])
        usage = client.runs.get(other["thread_id"], run["run_id"])["usage"]
        assert (usage["model_calls"], usage["cache_hits"]) == (2, 0)
        assert chat_requests(mock_openai) == 3

        # The header does the same on the run routes (langgraph-sdk sends it as given).
        for _ in range(2):
            mock_openai.enqueue_text("fine thanks", input_tokens=1000, output_tokens=250)
        headers = {"X-Dockyard-Cache": "bypass"}
        with_header = get_sync_client(url=server.url, headers=headers)
        third = with_header.threads.create()
        with_header.runs.wait(third["thread_id"], "asker", input=ask)
        (run,) = with_header.runs.list(third["thread_id"])
        assert run["usage"]["cache_hits"] == 0
        assert chat_requests(mock_openai) == 5
        bad = get_sync_client(url=server.url, headers={"X-Dockyard-Cache": "sometimes"})
        with pytest.raises(httpx.HTTPStatusError) as refused:
            bad.runs.wait(None, "asker", input=ask)
        assert refused.value.response.status_code == 422
        assert "X-Dockyard-Cache" in refused.value.response.text
    finally:
        server.stop()
