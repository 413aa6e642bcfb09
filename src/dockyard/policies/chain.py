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
from dockyard.policies.rate_limit import RateLimiter
from dockyard.policies.resilience import Resilience
from dockyard.policies.token_limit import KeyPoliciesCache, TokenLimitLayer
from dockyard.providers.registry import ModelRegistry
from dockyard.providers.wrapper import ModelLayer, wrap_model
from dockyard.settings import Settings
from dockyard.storage.base import KeyStore


class ModelChain:
    """A ``providers.registry.ModelWrap``: the policies of one process's models."""

    cache: CacheLayer | None = None
    """``policies.cache``'s layer, where a quality hook is set (``cache.quality``)."""
    tokens: TokenLimitLayer | None = None
    """``tokens_per_minute``'s layer; ``bind_keys`` gives it the key store."""

    def __init__(self, resilience: Resilience, outer: Sequence[ModelLayer] = ()) -> None:
        self.resilience = resilience
        # Layers every model gets, outside resilience (a fallback's call is already masked).
        self.outer = tuple(outer)

    def __call__(self, name: str, model: BaseChatModel, registry: ModelRegistry) -> BaseChatModel:
        layers = [*self.outer, *self.resilience.layers(name, registry)]
        return wrap_model(model, layers, name=name) if layers else model

    def bind_keys(self, keys: KeyStore) -> None:
        """The key store, once storage is open: keys' own token limits come from it."""
        if self.tokens is not None and isinstance(self.tokens.key_policies, KeyPoliciesCache):
            self.tokens.key_policies.keys = keys

    async def aclose(self) -> None:
        await self.resilience.aclose()
        if self.tokens is not None:
            await self.tokens.limiter.aclose()
        if self.cache is not None:
            await self.cache.store.aclose()


def model_wrap(settings: Settings) -> ModelChain:
    outer: list[ModelLayer] = []
    cache = cache_layer(settings)
    if cache is not None:  # outside PII: a hit skips every other layer and the provider
        outer.append(cache)
    if settings.policies.pii is not None:
        outer.append(PiiLayer(PiiPolicy.from_config(settings.policies.pii)))
    tokens = None
    limits = settings.policies.rate_limit
    tenant_tokens = limits.tenant.tokens_per_minute if limits and limits.tenant else None
    if limits is not None and (limits.tokens_per_minute or tenant_tokens):
        limiter = RateLimiter.from_settings(settings)
        assert limiter is not None
        tokens = TokenLimitLayer(limiter, KeyPoliciesCache(settings.auth.cache_seconds))
        outer.append(tokens)  # after PII (the order of issue 15), before resilience
    chain = ModelChain(Resilience.from_settings(settings), outer)
    chain.cache = cache
    chain.tokens = tokens
    return chain
