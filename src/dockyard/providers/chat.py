"""Chat models by string: ``load_chat_model("anthropic:claude-sonnet-4-6")``."""

from __future__ import annotations

from typing import Any

from langchain.chat_models import init_chat_model
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from pydantic import SecretStr

from dockyard.errors import ConfigError
from dockyard.providers._spec import ANTHROPIC, OPENAI, require_sdk, resolve_api_key, split_spec
from dockyard.providers.offline.base import FakeChatModelBase
from dockyard.providers.offline.deep import DeepOfflineModel
from dockyard.providers.offline.memory import MemoryOfflineModel
from dockyard.providers.offline.models import OfflineChatModel, ScriptedChatModel
from dockyard.providers.offline.research import ResearchOfflineModel
from dockyard.providers.offline.support import SupportOfflineModel
from dockyard.providers.offline.tickets import (
    FlakyTicketsModel,
    SloppyTicketsModel,
    TicketsOfflineModel,
)
from dockyard.sampling import with_run_params

CHAT_PROVIDERS = ("anthropic", "openai", "fake", "offline")
# The one "offline:support", whoever asks: the sample agent, `dockyard init`'s agent, a
# `models:` entry. (The sample agent's pretend back office, which its rules read, lives
# beside it in providers/offline.) "offline:research": the research team's roles.
# "offline:deep" plays the deep agent's flow (dockyard.agents.deep), which picks it by
# itself when no model is configured.
OFFLINE_PRESETS: dict[str, type[FakeChatModelBase]] = {
    "support": SupportOfflineModel,
    "research": ResearchOfflineModel,
    "deep": DeepOfflineModel,
    "memory": MemoryOfflineModel,  # dockyard.agents.memory_chat
    # dockyard.agents.tickets: one model under three names, so the routing tiers of
    # examples/tickets show apart in a run's usage; and two that answer badly on purpose.
    "tickets": TicketsOfflineModel,
    "tickets-fast": TicketsOfflineModel,
    "tickets-balanced": TicketsOfflineModel,
    "tickets-sloppy": SloppyTicketsModel,
    "tickets-flaky": FlakyTicketsModel,
}

# Client settings that configure a network client; the offline models have none.
_CLIENT_SETTINGS = ("temperature", "max_tokens", "timeout", "max_retries")


def load_chat_model(
    spec: str,
    *,
    base_url: str | None = None,
    api_key: str | SecretStr | None = None,
    **kwargs: Any,
) -> BaseChatModel:
    """Build the chat model named by ``spec``, a ``"provider:model"`` string.

    * ``anthropic:<model>``: ``ChatAnthropic`` (needs ``dockyard[anthropic]``).
    * ``openai:<model>``: ``ChatOpenAI`` (needs ``dockyard[openai]``). With ``base_url``
      it talks to any OpenAI-compatible server (vLLM, Ollama, llama.cpp); such servers
      need no key, so a missing one becomes a placeholder. Streams report token usage.
    * ``fake:<name>``: a ``ScriptedChatModel`` named ``<name>``; pass ``responses=[...]``
      (and ``cycle=``), or leave them out to get a model that echoes the last message.
    * ``offline:support``: the sample support agent's offline model (``SupportOfflineModel``,
      an ``OfflineChatModel`` that also follows ``SUPPORT_RULES``), which lets that agent
      and ``dockyard init``'s run with no API key; ``offline:research``, the research
      team's scripted roles (``ResearchOfflineModel``); ``offline:deep``, the deep agent's
      (``DeepOfflineModel``); ``offline:memory``, the memory chat's (``MemoryOfflineModel``);
      ``offline:tickets`` (and ``-fast``, ``-balanced``, ``-sloppy``, ``-flaky``), the
      ticket summarizer's (``TicketsOfflineModel``).
      Any other ``offline:<name>`` needs ``rules=[...]``.

    Other keyword arguments (``temperature``, ``max_tokens``, ``timeout``,
    ``max_retries``, ...) go to the model's constructor; ``None`` values are dropped so
    provider defaults apply. Every model returned also applies the sampling settings of
    the run calling it (``config["configurable"]["model_params"]``, see
    ``dockyard.sampling``), over the constructor's.

    Raises ``ConfigError`` for a malformed spec or an unknown provider (with a
    suggestion), ``ProviderSetupError`` when the SDK is not installed or no key is set.
    """
    provider, model = split_spec(spec, CHAT_PROVIDERS, what="chat model")
    kwargs = {name: value for name, value in kwargs.items() if value is not None}
    if provider in ("fake", "offline"):
        for name in _CLIENT_SETTINGS:
            kwargs.pop(name, None)
        if provider == "fake":
            return _fake(model, kwargs)
        return _offline(model, kwargs)

    sdk = ANTHROPIC if provider == "anthropic" else OPENAI
    require_sdk(sdk)
    local_server = provider == "openai" and base_url is not None
    key = resolve_api_key(sdk, api_key, local_server=local_server)
    if key is not None:
        kwargs["api_key"] = key
    if base_url is not None:
        kwargs["base_url"] = base_url
    if provider == "openai":
        # langchain-openai only asks for usage in streams when talking to api.openai.com;
        # without it, streamed runs on other servers report no token usage (the /v1
        # route's `usage` comes from it).
        kwargs.setdefault("stream_usage", True)

    chat_model: BaseChatModel = init_chat_model(model, model_provider=provider, **kwargs)
    return with_run_params(chat_model)


def _echo(messages: list[BaseMessage]) -> str:
    return messages[-1].text if messages else ""


def _fake(name: str, kwargs: dict[str, Any]) -> BaseChatModel:
    if "responses" not in kwargs:
        kwargs["responses"] = [_echo]
        kwargs.setdefault("cycle", True)
    return ScriptedChatModel(model_name=name, **kwargs)


def _offline(name: str, kwargs: dict[str, Any]) -> BaseChatModel:
    if "rules" in kwargs:
        return OfflineChatModel(model_name=f"offline-{name}", **kwargs)
    if name not in OFFLINE_PRESETS:
        presets = ", ".join(f"'offline:{preset}'" for preset in OFFLINE_PRESETS)
        raise ConfigError(f"unknown offline preset {name!r}; use {presets} or pass rules=[...]")
    return OFFLINE_PRESETS[name](model_name=f"offline-{name}", **kwargs)
