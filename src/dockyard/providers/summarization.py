"""Summarize long conversations, from ``policies.summarization``: LangChain's
``SummarizationMiddleware``, built per process policies and read on each call."""

from __future__ import annotations

from typing import Any

from langchain.agents.middleware import SummarizationMiddleware
from langchain.agents.middleware.types import AgentState
from langgraph.runtime import Runtime

from dockyard.errors import ConfigError
from dockyard.providers.registry import RegistryChatModel, run_registry
from dockyard.settings import SummarizationConfig


class ConfiguredSummarization(SummarizationMiddleware):
    """Delegates to a ``SummarizationMiddleware`` made from ``policies.summarization``
    (one per settings object); does nothing without it."""

    def __init__(self) -> None:
        # LangChain needs a model and a trigger to construct; the configured ones are used.
        super().__init__(model=RegistryChatModel(key="default"), trigger=("messages", 2**31))
        self._built: tuple[SummarizationConfig | None, SummarizationMiddleware | None] = (
            None,
            None,
        )

    def _configured(self) -> SummarizationMiddleware | None:
        config = run_registry().policies.summarization
        if config is None:
            return None
        built_for, built = self._built
        if config is not built_for or built is None:
            built = _build(config)
            self._built = (config, built)
        return built

    def before_model(self, state: AgentState[Any], runtime: Runtime[Any]) -> dict[str, Any] | None:
        configured = self._configured()
        return configured.before_model(state, runtime) if configured is not None else None

    async def abefore_model(
        self, state: AgentState[Any], runtime: Runtime[Any]
    ) -> dict[str, Any] | None:
        configured = self._configured()
        return await configured.abefore_model(state, runtime) if configured is not None else None


def _build(config: SummarizationConfig) -> SummarizationMiddleware:
    window = config.context_window
    if window is None:
        profile = run_registry().get(config.model).profile or {}
        window = profile.get("max_input_tokens")
    if not window:
        raise ConfigError(
            f"policies.summarization: the context window of model {config.model!r} is not "
            "known; set policies.summarization.context_window (tokens)"
        )
    # The proxy resolves the summarizing model per call, like chat_model(); the profile
    # gives LangChain the window its fraction is of.
    model = RegistryChatModel(key=config.model, profile={"max_input_tokens": window})
    return SummarizationMiddleware(
        model=model,
        trigger=("fraction", config.trigger_fraction),
        keep=("messages", config.keep_messages),
    )
