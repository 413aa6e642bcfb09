"""Sampling fields of /v1/chat/completions reach the provider behind the agent.

The sample support agent runs on the real provider SDKs (through LangChain) pointed at
dockyard's mock Anthropic and OpenAI servers, which record every request and cut replies
at ``max_tokens`` and stop sequences as the providers do. The OpenAI graph gets its model
from ``models:`` in dockyard.yaml, the Anthropic one from ``load_chat_model``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest
from langgraph_sdk import get_client

from dockyard.testing import MockAnthropicServer, MockOpenAIServer, MockProviderServer
from dockyard.testing.mock_providers import RecordedRequest
from tests.conftest import LiveServer

ANTHROPIC_AGENT = """
from dockyard.agents.support import make_graph
from dockyard.providers import load_chat_model

graph = make_graph(
    model=load_chat_model(
        "anthropic:claude-sonnet-4-6", base_url={base_url!r}, api_key="test-key", max_retries=0
    )
)
"""

# The model is `models: default` of the project's dockyard.yaml, which the server hands to
# each run (the agent runs on chat_model("default")).
OPENAI_AGENT = """
from dockyard.agents.support import graph
"""

DOCKYARD_YAML = """
graphs:
  support_anthropic: ./anthropic_agent.py:graph
  support_openai: ./openai_agent.py:graph
models:
  default: {{model: "openai:gpt-4o-mini", base_url: {base_url!r}, max_retries: 0}}
"""

QUESTION = {"role": "user", "content": "what is your return policy?"}
POLICY = "Unworn items can be returned within 30 days of delivery for a full refund."


class Project:
    def __init__(self, url: str, anthropic: MockAnthropicServer, openai: MockOpenAIServer):
        self.url = url
        self.mocks: dict[str, MockProviderServer] = {
            "support_anthropic": anthropic,
            "support_openai": openai,
        }

    def model_calls(self, graph: str) -> list[RecordedRequest]:
        return [
            r
            for r in self.mocks[graph].requests
            if r.path.endswith(("/messages", "/chat/completions"))
        ]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("sampling")
    with MockAnthropicServer() as anthropic, MockOpenAIServer() as openai_mock:
        agent = ANTHROPIC_AGENT.format(base_url=anthropic.base_url)
        (root / "anthropic_agent.py").write_text(agent)
        (root / "openai_agent.py").write_text(OPENAI_AGENT)
        (root / "dockyard.yaml").write_text(DOCKYARD_YAML.format(base_url=openai_mock.base_url))
        server = LiveServer(root / "data", config=root / "dockyard.yaml").start()
        try:
            yield Project(server.url, anthropic, openai_mock)
        finally:
            server.stop()


@pytest.fixture
async def oai(project: Project) -> AsyncIterator[openai.AsyncOpenAI]:
    for mock in project.mocks.values():
        mock.reset()
    client = openai.AsyncOpenAI(base_url=f"{project.url}/v1", api_key="unused", max_retries=0)
    yield client
    await client.close()


GRAPHS = ["support_anthropic", "support_openai"]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("graph", GRAPHS)
async def test_sampling_fields_reach_every_model_call(
    oai: openai.AsyncOpenAI, project: Project, graph: str, stream: bool
) -> None:
    mock = project.mocks[graph]
    mock.enqueue_tool_call("search_faq", {"query": "return policy"})
    mock.enqueue_text(POLICY)
    kw: dict[str, Any] = {"max_tokens": 200, "temperature": 0.25, "top_p": 0.5, "stop": ["ZZZ"]}
    if graph == "support_openai":
        kw.update(seed=7, presence_penalty=0.5, frequency_penalty=-0.5)
    if stream:
        chunks = [
            c
            async for c in await oai.chat.completions.create(
                model=graph, messages=[QUESTION], stream=True, **kw
            )
        ]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert chunks[-1].choices[0].finish_reason == "stop"
    else:
        out = await oai.chat.completions.create(model=graph, messages=[QUESTION], **kw)
        text = out.choices[0].message.content or ""
        assert out.choices[0].finish_reason == "stop"
    assert POLICY in text

    calls = project.model_calls(graph)
    assert len(calls) == 2  # the tool call, then the answer: both carry the settings
    for call in calls:
        body = call.body
        assert body["temperature"] == 0.25 and body["top_p"] == 0.5
        if graph == "support_anthropic":
            assert body["max_tokens"] == 200
            assert body["stop_sequences"] == ["ZZZ"]
        else:
            # langchain-openai sends OpenAI's current name for max_tokens.
            assert body["max_completion_tokens"] == 200
            assert body["stop"] == ["ZZZ"]
            assert body["seed"] == 7
            assert body["presence_penalty"] == 0.5 and body["frequency_penalty"] == -0.5


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("graph", GRAPHS)
async def test_small_max_tokens_ends_with_length(
    oai: openai.AsyncOpenAI, project: Project, graph: str, stream: bool
) -> None:
    project.mocks[graph].enqueue_text(POLICY)
    if stream:
        chunks = [
            c
            async for c in await oai.chat.completions.create(
                model=graph, messages=[QUESTION], max_tokens=3, stream=True
            )
        ]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finish = chunks[-1].choices[0].finish_reason
    else:
        out = await oai.chat.completions.create(
            model=graph, messages=[QUESTION], max_completion_tokens=3
        )
        text, finish = out.choices[0].message.content or "", out.choices[0].finish_reason
    assert text == "Unworn items can"
    assert finish == "length"
    [call] = project.model_calls(graph)
    assert call.body.get("max_tokens", call.body.get("max_completion_tokens")) == 3


@pytest.mark.parametrize("graph", GRAPHS)
async def test_stop_sequence_cuts_the_answer(
    oai: openai.AsyncOpenAI, project: Project, graph: str
) -> None:
    project.mocks[graph].enqueue_text(POLICY)
    out = await oai.chat.completions.create(model=graph, messages=[QUESTION], stop="30 days")
    assert out.choices[0].message.content == "Unworn items can be returned within "
    assert out.choices[0].finish_reason == "stop"


async def test_without_sampling_fields_the_model_keeps_its_own(
    oai: openai.AsyncOpenAI, project: Project
) -> None:
    project.mocks["support_openai"].enqueue_text(POLICY)
    await oai.chat.completions.create(model="support_openai", messages=[QUESTION])
    [call] = project.model_calls("support_openai")
    for key in ("temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed"):
        assert key not in call.body


async def test_assistant_settings_are_the_defaults_the_request_overrides(
    oai: openai.AsyncOpenAI, project: Project
) -> None:
    sdk = get_client(url=project.url)
    assistant = await sdk.assistants.create(
        "support_openai",
        config={"configurable": {"model_params": {"temperature": 0.1, "max_tokens": 50}}},
    )
    await sdk.aclose()
    mock = project.mocks["support_openai"]
    mock.enqueue_text(POLICY)
    await oai.chat.completions.create(
        model=assistant["assistant_id"], messages=[QUESTION], temperature=0.9
    )
    [call] = project.model_calls("support_openai")
    assert call.body["temperature"] == 0.9
    assert call.body["max_completion_tokens"] == 50


async def test_agent_server_runs_take_model_params_too(project: Project) -> None:
    for mock in project.mocks.values():
        mock.reset()
    project.mocks["support_anthropic"].enqueue_text(POLICY)
    sdk = get_client(url=project.url)
    out = await sdk.runs.wait(
        None,
        "support_anthropic",
        input={"messages": [QUESTION]},
        config={"configurable": {"model_params": {"max_tokens": 4, "temperature": 0.0}}},
    )
    await sdk.aclose()
    assert isinstance(out, dict)
    assert out["messages"][-1]["content"] == "Unworn items can be"
    [call] = project.model_calls("support_anthropic")
    assert call.body["max_tokens"] == 4 and call.body["temperature"] == 0.0


@pytest.mark.parametrize(
    ("kw", "named"),
    [
        ({"seed": 1}, "seed"),
        (
            {"presence_penalty": 1.0, "frequency_penalty": 1.0},
            "frequency_penalty, presence_penalty",
        ),
        ({"temperature": 1.5}, "temperature 1.5"),
    ],
)
async def test_settings_anthropic_has_not_fail_the_run_saying_so(
    oai: openai.AsyncOpenAI, project: Project, kw: dict[str, Any], named: str
) -> None:
    with pytest.raises(openai.APIStatusError) as err:
        await oai.chat.completions.create(model="support_anthropic", messages=[QUESTION], **kw)
    assert err.value.status_code == 502
    assert err.value.code == "agent_failed"
    assert named in err.value.message and "Anthropic" in err.value.message
    assert project.model_calls("support_anthropic") == []  # nothing was sent


# -- validation: 422 naming the field, before any run starts ------------------------------


@pytest.mark.parametrize(
    ("kw", "param"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_completion_tokens": -1}, "max_completion_tokens"),
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"presence_penalty": 3}, "presence_penalty"),
        ({"frequency_penalty": -2.5}, "frequency_penalty"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stop": [""]}, "stop"),
        ({"stop": []}, "stop"),
        ({"seed": 2**63}, "seed"),
        ({"max_tokens": 5, "max_completion_tokens": 5}, None),
    ],
)
async def test_out_of_range_settings_are_422(
    oai: openai.AsyncOpenAI, project: Project, kw: dict[str, Any], param: str | None
) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as err:
        await oai.chat.completions.create(model="support_openai", messages=[QUESTION], **kw)
    assert err.value.code == "invalid_request"
    assert err.value.param == param
    assert (param or "max_completion_tokens") in err.value.message
    assert project.model_calls("support_openai") == []


@pytest.mark.parametrize(
    ("kw", "param", "why"),
    [
        ({"n": 2}, "n", "n=1"),
        ({"logprobs": True}, "logprobs", "log probabilities"),
        ({"response_format": {"type": "json_object"}}, "response_format", "defined by the graph"),
        ({"parallel_tool_calls": False}, "parallel_tool_calls", "its own tools"),
        ({"reasoning_effort": "low"}, "reasoning_effort", "set it on the model"),
        ({"logit_bias": {"50256": -100}}, "logit_bias", "tokenizer"),
        ({"extra_body": {"prompt_cache_key": "k"}}, "prompt_cache_key", "cache keys"),
    ],
)
async def test_what_cannot_apply_is_refused_with_the_reason(
    oai: openai.AsyncOpenAI, project: Project, kw: dict[str, Any], param: str, why: str
) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as err:
        await oai.chat.completions.create(model="support_openai", messages=[QUESTION], **kw)
    assert err.value.code == "unsupported_field"
    assert err.value.param == param
    assert why in err.value.message


async def test_values_that_ask_for_the_default_are_accepted(
    oai: openai.AsyncOpenAI, project: Project
) -> None:
    project.mocks["support_openai"].enqueue_text(POLICY)
    out = await oai.chat.completions.create(
        model="support_openai",
        messages=[QUESTION],
        n=1,
        logprobs=False,
        response_format={"type": "text"},
        user="u-1",
        metadata={"ticket": "T-1"},
    )
    assert out.choices[0].message.content == POLICY


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/runs/wait", {"assistant_id": "support_openai", "input": {"messages": []}}),
        ("/assistants", {"graph_id": "support_openai"}),
    ],
)
async def test_bad_model_params_in_a_config_are_422(
    project: Project, path: str, body: dict[str, Any]
) -> None:
    async with httpx.AsyncClient(base_url=project.url, timeout=30) as http:
        for params, named in (
            ({"temperature": 9}, "config.configurable.model_params.temperature"),
            ({"top_k": 3}, "config.configurable.model_params.top_k"),
        ):
            config = {"configurable": {"model_params": params}}
            r = await http.post(path, json={**body, "config": config})
            assert r.status_code == 422, r.text
            assert r.json()["code"] == "invalid_request"
            assert named in r.json()["detail"]


# -- on every deployment: the settings go through run storage (and Redis) to the model ----


@pytest.fixture
async def oai_any(server_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=f"{server_url}/v1", api_key="unused", max_retries=0)
    yield client
    await client.close()


@pytest.mark.parametrize("stream", [False, True])
async def test_max_tokens_on_every_deployment(oai_any: openai.AsyncOpenAI, stream: bool) -> None:
    # weather_agent's fake model says "Let me check." and calls a tool; one token cuts
    # the call, so the agent stops after its first model call.
    kw: dict[str, Any] = {"model": "weather_agent", "messages": [QUESTION], "max_tokens": 1}
    if stream:
        chunks = [c async for c in await oai_any.chat.completions.create(stream=True, **kw)]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finish = chunks[-1].choices[0].finish_reason
    else:
        out = await oai_any.chat.completions.create(**kw)
        text, finish = out.choices[0].message.content, out.choices[0].finish_reason
    assert (text, finish) == ("Let", "length")
    full = await oai_any.chat.completions.create(model="weather_agent", messages=[QUESTION])
    assert full.choices[0].message.content == "It is sunny in Paris."
