"""Which model each agent runs on when no model is configured and no key is set."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from langchain.agents.middleware.types import AgentMiddleware, ModelCallResult, ModelRequest
from langchain_core.language_models import BaseChatModel

from dockyard.providers.offline.research import ResearchOfflineModel
from dockyard.providers.registry import (
    OFFLINE_DEFAULT,
    ModelRegistry,
    RegistryChatModel,
    run_registry,
)


class OfflineResearchModel(AgentMiddleware[Any, Any]):
    """With no model configured and no provider key the run's ``default`` is the offline
    support model, which knows nothing of research: this swaps in ``offline:research``
    (``ResearchOfflineModel``), wrapped in the run's policy chain like any model."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[int, tuple[ModelRegistry, BaseChatModel]] = {}

    def _swap(self, request: ModelRequest[Any]) -> ModelRequest[Any]:
        model = request.model
        if not isinstance(model, RegistryChatModel):
            return request
        registry = run_registry()
        spec = registry.spec(model.key)
        if spec is None or spec.model != OFFLINE_DEFAULT:
            return request
        made = self._made.get(id(registry))
        if made is None or made[0] is not registry:
            offline: BaseChatModel = ResearchOfflineModel()
            if registry.wrap is not None:
                offline = registry.wrap(model.key, offline, registry)
            made = self._made[id(registry)] = (registry, offline)
        return request.override(model=made[1])

    def wrap_model_call(
        self, request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], ModelCallResult]
    ) -> ModelCallResult:
        return handler(self._swap(request))

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelCallResult]],
    ) -> ModelCallResult:
        return await handler(self._swap(request))
