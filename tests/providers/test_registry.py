"""ModelRegistry and chat_model: named models, chosen for each call from the run's config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from pydantic import BaseModel

import dockyard
from dockyard import ModelRegistry, chat_model
from dockyard.errors import ConfigError
from dockyard.providers import registry as registry_module
from dockyard.providers.offline.support import SupportOfflineModel
from dockyard.providers.registry import MODELS_KEY, RegistryChatModel
from dockyard.runtime.translate import EventTranslator
from dockyard.settings import Settings
from dockyard.testing import OfflineChatModel, ScriptedChatModel

# One model for the whole module, as a graph file has it.
MODEL = chat_model("default")


def scripted(*responses: Any) -> ScriptedChatModel:
    return ScriptedChatModel(responses=list(responses), cycle=True)


def echo_graph() -> Any:
    # A sync node: LangGraph runs it in a thread, which still sees the run's config.
    def answer(state: MessagesState) -> dict[str, Any]:
        return {"messages": [MODEL.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("answer", answer)
    graph.add_edge(START, "answer")
    return graph.compile()


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_exported_from_the_package() -> None:
    assert {"chat_model", "ModelRegistry"} <= set(dockyard.__all__)
    assert dockyard.chat_model is chat_model
    with pytest.raises(AttributeError):
        dockyard.no_such_name  # noqa: B018


def test_built_from_settings(no_keys: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "key").write_text("sk-file\n")
    settings = Settings(
        project_dir=tmp_path,
        models={
            "default": "fake:main",
            "local": {"model": "openai:qwen", "base_url": "http://127.0.0.1:9/v1"},
            "keyed": {"model": "openai:gpt-4o", "api_key_file": "key", "temperature": 0.2},
        },
    )
    registry = ModelRegistry.from_settings(settings)

    assert registry.names == ["default", "keyed", "local"]
    main = registry.get("default")
    assert isinstance(main, ScriptedChatModel) and main.model_name == "main"
    assert registry.get("default") is main  # built once
    keyed = registry.get("keyed")
    assert keyed.openai_api_key.get_secret_value() == "sk-file"  # type: ignore[attr-defined]
    assert keyed.temperature == 0.2  # type: ignore[attr-defined]


def test_a_model_that_cannot_be_built_stops_start_up(no_keys: pytest.MonkeyPatch) -> None:
    settings = Settings(models={"default": "fake:x", "smart": "anthropic:claude-sonnet-4-6"})
    with pytest.raises(ConfigError, match=r"models\.smart: no API key .*ANTHROPIC_API_KEY") as err:
        ModelRegistry.from_settings(settings)
    assert err.value.code == "provider_setup"
    with pytest.raises(ConfigError, match=r"models\.bad: unknown offline preset"):
        ModelRegistry.from_settings(Settings(models={"bad": "offline:nope"}))


def test_default_without_models_default(no_keys: pytest.MonkeyPatch) -> None:
    # Chosen when the registry is made (the process starts), built on first use.
    offline = ModelRegistry()
    no_keys.setenv("OPENAI_API_KEY", "sk-test")
    keyed = ModelRegistry.from_settings(Settings())

    assert isinstance(offline.get("default"), SupportOfflineModel)
    assert keyed.get("default").model_name == "gpt-4o-mini"  # type: ignore[attr-defined]
    no_keys.setenv("ANTHROPIC_API_KEY", "sk-ant")
    assert ModelRegistry().get("default").model == "claude-sonnet-4-6"  # type: ignore[attr-defined]


def test_unknown_name_says_what_is_there(no_keys: pytest.MonkeyPatch) -> None:
    registry = ModelRegistry({"default": "fake:a", "fast": "fake:b"})
    with pytest.raises(ConfigError, match="did you mean 'fast'") as err:
        registry.get("fsat")
    assert err.value.code == "unknown_model"
    assert "models configured: default, fast" in err.value.message
    assert "DOCKYARD_MODELS__FSAT" in err.value.message

    # Through chat_model, at the call (the name is looked up in the run's registry).
    model = chat_model("defualt")
    with pytest.raises(ConfigError, match="did you mean 'default'"):
        model.invoke("hi", registry.run_config())
    with pytest.raises(ConfigError, match="takes a model name"):
        chat_model("")


def test_each_call_uses_the_registry_of_its_run() -> None:
    a = ModelRegistry({"default": scripted("from a")})
    b = ModelRegistry({"default": scripted("from b")})
    graph = echo_graph()

    def ask(registry: ModelRegistry) -> str:
        out = graph.invoke({"messages": [HumanMessage("hi")]}, registry.run_config())
        return str(out["messages"][-1].content)

    # Two assistants (two registries) through one module-level model, interleaved.
    assert [ask(a), ask(b), ask(a)] == ["from a", "from b", "from a"]
    assert MODEL.invoke("hi", b.run_config()).content == "from b"
    assert isinstance(MODEL, RegistryChatModel)


async def test_streams_through_the_run_model() -> None:
    registry = ModelRegistry({"default": scripted("one two three")})
    chunks = [c async for c in MODEL.astream("hi", registry.run_config())]
    assert len(chunks) > 1 and all(isinstance(c, AIMessageChunk) for c in chunks)
    assert "".join(str(c.content) for c in chunks) == "one two three"
    assert [c.content for c in MODEL.stream("hi", registry.run_config())][:2] == ["one", " two"]

    # LangGraph's `messages` mode sees the underlying model's tokens.
    graph = echo_graph()
    tokens = [
        msg.content
        async for msg, _meta in graph.astream(
            {"messages": [HumanMessage("hi")]}, registry.run_config(), stream_mode="messages"
        )
        if msg.content
    ]
    assert len(tokens) == 3 and "".join(tokens) == "one two three"


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order."""
    return order_id


async def test_bind_tools_binds_on_the_run_model() -> None:
    rules = OfflineChatModel(rules=[("order", "lookup_order")])
    other = scripted("no tools here")
    bound = MODEL.bind_tools([lookup_order])

    reply = await bound.ainvoke("where is my order", ModelRegistry({"default": rules}).run_config())
    assert [c["name"] for c in reply.tool_calls] == ["lookup_order"]
    reply = bound.invoke("where is my order", ModelRegistry({"default": other}).run_config())
    assert reply.content == "no tools here"
    with_rules = ModelRegistry({"default": rules}).run_config()
    chunks = [c async for c in bound.astream("my order", with_rules)]
    merged = sum(chunks[1:], chunks[0])
    assert [c["name"] for c in merged.tool_calls] == ["lookup_order"]


class Answer(BaseModel):
    city: str


def test_structured_output_from_the_run_model() -> None:
    call = AIMessage("", tool_calls=[{"name": "Answer", "args": {"city": "Oslo"}, "id": "c1"}])
    registry = ModelRegistry({"default": scripted(call)})
    structured = MODEL.with_structured_output(Answer)
    assert structured.invoke("capital of Norway?", registry.run_config()) == Answer(city="Oslo")


def test_run_sampling_params_still_apply() -> None:
    registry = ModelRegistry({"default": "fake:echo"})
    config = registry.run_config({"configurable": {"model_params": {"max_tokens": 2}}})
    assert MODEL.invoke("one two three four", config).content == "one two"


def test_outside_a_run_the_project_settings_are_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry_module._settings_registry.cache_clear()
    monkeypatch.setenv("DOCKYARD_CONFIG_FILE", str(tmp_path / "dockyard.yaml"))
    (tmp_path / "dockyard.yaml").write_text("models:\n  default: fake:from-file\n")
    try:
        reply = echo_graph().invoke({"messages": [HumanMessage("plain call")]})["messages"][-1]
        assert reply.content == "plain call"
        assert reply.response_metadata["model_name"] == "from-file"
        # A client's value under the key is not a registry: ignored, never called.
        assert MODEL.invoke("x", {"configurable": {MODELS_KEY: "nope"}}).content == "x"
    finally:
        registry_module._settings_registry.cache_clear()


def test_outside_a_run_with_settings_that_do_not_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry_module._settings_registry.cache_clear()
    monkeypatch.setenv("DOCKYARD_CONFIG_FILE", str(tmp_path / "missing.yaml"))
    try:
        with pytest.raises(ConfigError, match="outside a dockyard run") as err:
            MODEL.invoke("hi")
        assert "run_config()" in err.value.message and "does not exist" in err.value.message
    finally:
        registry_module._settings_registry.cache_clear()


def test_streamed_checkpoint_configs_leave_the_registry_out() -> None:
    registry = ModelRegistry()
    sent: list[tuple[str, bytes]] = []
    translator = EventTranslator(["checkpoints", "debug"], lambda e, d: sent.append((e, d)))
    config = {"configurable": {"thread_id": "t", MODELS_KEY: registry, "mine": 1}}
    payload = {"config": config, "parent_config": config, "values": {}}
    translator.chunk((), "checkpoints", payload)
    translator.chunk((), "debug", {"type": "checkpoint", "step": 0, "payload": payload})

    assert len(sent) == 2
    for _, data in sent:
        assert MODELS_KEY.encode() not in data and b"ModelRegistry" not in data
        assert b'"mine":1' in data and b'"thread_id":"t"' in data
    assert MODELS_KEY in config["configurable"]  # the run's own config is left alone
