"""The model-level policy chain: what ``ModelRegistry(wrap=...)`` puts around each model.

``model_wrap(settings)`` is handed to the registry by the runtime (``runtime.graphs``),
so the providers never import a policy. Each model-level policy contributes its layers
for a model name, in the chain's order (outermost first); resilience (retries, breaker,
fallbacks) is innermost, next to the provider. A model with no layers is handed out as
the provider built it.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel

from dockyard.policies.cache import CacheLayer, cache_layer
from dockyard.policies.pii.layer import PiiLayer
from dockyard.policies.pii.policy import PiiPolicy
from dockyard.policies.resilience import Resilience
from dockyard.providers.registry import ModelRegistry
from dockyard.providers.wrapper import ModelLayer, wrap_model
from dockyard.settings import Settings


class ModelChain:
    """A ``providers.registry.ModelWrap``: the policies of one process's models."""

    cache: CacheLayer | None = None
    """``policies.cache``'s layer, where a quality hook is set (``cache.quality``)."""

    def __init__(self, resilience: Resilience, outer: Sequence[ModelLayer] = ()) -> None:
        self.resilience = resilience
        # Layers every model gets, outside resilience (a fallback's call is already masked).
        self.outer = tuple(outer)

    def __call__(self, name: str, model: BaseChatModel, registry: ModelRegistry) -> BaseChatModel:
        layers = [*self.outer, *self.resilience.layers(name, registry)]
        return wrap_model(model, layers, name=name) if layers else model

    async def aclose(self) -> None:
        await self.resilience.aclose()
        if self.cache is not None:
            await self.cache.store.aclose()


def model_wrap(settings: Settings) -> ModelChain:
    outer: list[ModelLayer] = []
    cache = cache_layer(settings)
    if cache is not None:  # outside PII: a hit skips every other layer and the provider
        outer.append(cache)
    if settings.policies.pii is not None:
        outer.append(PiiLayer(PiiPolicy.from_config(settings.policies.pii)))
    chain = ModelChain(Resilience.from_settings(settings), outer)
    chain.cache = cache
    return chain
