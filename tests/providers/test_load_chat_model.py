from __future__ import annotations

import sys

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_openai import ChatOpenAI

from dockyard.errors import ConfigError, ProviderSetupError
from dockyard.providers import env_var_is_set, load_chat_model
from dockyard.providers.offline.support import SupportOfflineModel
from dockyard.testing import OfflineChatModel, ScriptedChatModel


@pytest.mark.parametrize(
    ("spec", "suggestion"),
    [
        ("antropic:claude-sonnet-4-5", "did you mean 'anthropic:claude-sonnet-4-5'?"),
        ("OpenAi:gpt-4o-mini", None),
        ("opnai:gpt-4o-mini", "did you mean 'openai:gpt-4o-mini'?"),
        ("claude-sonnet-4-5", "did you mean 'anthropic:claude-sonnet-4-5'?"),
        ("gpt-4o", "did you mean 'openai:gpt-4o'?"),
    ],
)
def test_bad_specs_suggest_the_fix(
    spec: str, suggestion: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    if suggestion is None:  # provider names are case-insensitive
        assert isinstance(load_chat_model(spec), ChatOpenAI)
        return
    with pytest.raises(ConfigError) as caught:
        load_chat_model(spec)
    assert suggestion in str(caught.value)


def test_unknown_provider_lists_the_supported_ones() -> None:
    with pytest.raises(ConfigError, match="supported providers: anthropic, fake, offline, openai"):
        load_chat_model("zzz:model")


def test_spec_needs_a_model_name() -> None:
    with pytest.raises(ConfigError, match="names no model"):
        load_chat_model("openai:")


@pytest.mark.parametrize(
    ("spec", "env_var"),
    [
        ("anthropic:claude-sonnet-4-5", "ANTHROPIC_API_KEY"),
        ("openai:gpt-4o-mini", "OPENAI_API_KEY"),
    ],
)
def test_missing_key_names_the_env_var(
    spec: str, env_var: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(env_var, raising=False)

    with pytest.raises(ProviderSetupError, match=f"set the {env_var} environment variable"):
        load_chat_model(spec)


def test_key_from_the_environment_is_left_to_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-env")

    model = load_chat_model("anthropic:claude-sonnet-4-5", max_tokens=256, temperature=None)

    assert isinstance(model, ChatAnthropic)
    assert model.model == "claude-sonnet-4-5" and model.max_tokens == 256
    assert model.anthropic_api_key.get_secret_value() == "sk-ant-from-env"


def test_blank_env_var_counts_as_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "  ")

    assert not env_var_is_set("OPENAI_API_KEY")
    with pytest.raises(ProviderSetupError, match="OPENAI_API_KEY"):
        load_chat_model("openai:gpt-4o-mini")


def test_openai_compatible_server_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    model = load_chat_model("openai:llama3.1", base_url="http://127.0.0.1:11434/v1")

    assert isinstance(model, ChatOpenAI)
    assert model.openai_api_base == "http://127.0.0.1:11434/v1"
    assert model.openai_api_key is not None
    assert model.openai_api_key.get_secret_value() == "not-needed"
    assert model.stream_usage is True


def test_missing_sdk_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "langchain_anthropic", None)

    with pytest.raises(ProviderSetupError) as caught:
        load_chat_model("anthropic:claude-sonnet-4-5", api_key="k")

    assert 'pip install "dockyard[anthropic]"' in str(caught.value)
    assert caught.value.code == "provider_setup"


def test_fake_spec_echoes_or_follows_a_script() -> None:
    echo = load_chat_model("fake:echo", temperature=0.3, timeout=5)
    scripted = load_chat_model("fake:my-model", responses=["scripted"])

    assert isinstance(echo, ScriptedChatModel) and isinstance(scripted, ScriptedChatModel)
    assert [echo.invoke(t).content for t in ("one", "two", "three")] == ["one", "two", "three"]
    reply = scripted.invoke("x")
    assert reply.content == "scripted" and reply.response_metadata["model_name"] == "my-model"


def test_offline_support_preset() -> None:
    model = load_chat_model("offline:support", max_tokens=100)

    # One model whoever asks: the sample agent's tools and SUPPORT_RULES' (dockyard init's).
    assert isinstance(model, SupportOfflineModel) and isinstance(model, OfflineChatModel)
    assert {rule.tool for rule in model.rules} == {
        "create_ticket",
        "issue_refund",
        "lookup_order",
        "search_faq",
        "search_knowledge_base",
    }


def test_offline_needs_a_known_preset_or_rules() -> None:
    with pytest.raises(ConfigError, match="'offline:support', 'offline:memory' or pass rules"):
        load_chat_model("offline:sales")

    custom = load_chat_model("offline:sales", rules=[("price", "quote")])
    assert isinstance(custom, OfflineChatModel) and custom.rules[0].tool == "quote"
