"""The model-level policy chain: what ``ModelRegistry(wrap=...)`` puts around each model.

``model_wrap(settings)`` is handed to the registry by the runtime (``runtime.graphs``),
so the providers never import a policy. Each model-level policy contributes its layers
for a model name, in the chain's order (outermost first); resilience (retries, breaker,
fallbacks) is innermost, next to the provider. A model with no layers is handed out as
the provider built it.

An assistant with policies of its own (``assistants:``) gets a chain of its own
(``ModelChain.for_policies``) for a registry of its own (``ModelRegistry.derive``): its
cache and PII layers are built from its policies, the breakers are the process's.
Routing is not a layer: it chooses the model (``policies.routing``) before any chain.

The quality gate (``policies.quality``) is a layer right inside the cache; its grader is
built from ``quality/`` by the runtime, which hands the chain a ``GraderFactory``
(``set_grader``), as it hands the cache its quality hook (``set_quality``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.outputs import ChatResult

from dockyard.policies.cache import CacheLayer, QualityHook, cache_layer
from dockyard.policies.pii.layer import PiiLayer
from dockyard.policies.pii.policy import PiiPolicy
from dockyard.policies.quality_gate import Grader, QualityGate, SyncGrader
from dockyard.policies.rate_limit import RateLimiter
from dockyard.policies.resilience import Resilience
from dockyard.policies.token_limit import KeyPoliciesCache, TokenLimitLayer
from dockyard.providers.registry import ModelRegistry
from dockyard.providers.wrapper import ModelCall, ModelLayer, WrappedChatModel, wrap_model
from dockyard.settings import PoliciesConfig, QualityConfig, Settings
from dockyard.storage.base import KeyStore

GraderFactory = Callable[[QualityConfig], tuple[Grader, SyncGrader | None]]
"""Builds the gate's grader (async, and sync when it needs no event loop) from a
``policies.quality`` block; the runtime gives one (``runtime/quality.py``)."""


class ModelChain:
    """A ``providers.registry.ModelWrap``: the policies of one process's models."""

    cache: CacheLayer | None = None
    """``policies.cache``'s layer, where a quality hook is set (``cache.quality``)."""
    tokens: TokenLimitLayer | None = None
    """``tokens_per_minute``'s layer, the process's (assistants share it); ``bind_keys``
    gives it the key store."""
    quality: QualityConfig | None = None
    """``policies.quality`` of this chain: a gate for each model once a grader factory is
    set (``set_grader``)."""

    def __init__(
        self,
        resilience: Resilience,
        outer: Sequence[ModelLayer] = (),
        *,
        owns_resilience: bool = True,
    ) -> None:
        self.resilience = resilience
        # Layers every model gets, outside resilience (a fallback's call is already masked).
        self.outer = tuple(outer)
        self._owns_resilience = owns_resilience
        self._derived: list[ModelChain] = []
        self._grader_factory: GraderFactory | None = None
        self._grader: tuple[Grader, SyncGrader | None] | None = None

    def __call__(self, name: str, model: BaseChatModel, registry: ModelRegistry) -> BaseChatModel:
        head = [layer for layer in self.outer if layer is self.cache]
        rest = [layer for layer in self.outer if layer is not self.cache]
        gate = self._gate(name, registry, rest)
        layers = [*head, *gate, *rest, *self.resilience.layers(name, registry)]
        return wrap_model(model, layers, name=name) if layers else model

    def set_grader(self, factory: GraderFactory | None) -> None:
        """The quality gate's grader factory, for this chain and every assistant's; set
        before models are wrapped (a model wrapped earlier has no gate)."""
        for chain in (self, *self._derived):
            chain._grader_factory, chain._grader = factory, None

    def _gate(
        self, name: str, registry: ModelRegistry, inner: list[ModelLayer]
    ) -> list[ModelLayer]:
        """The gate of model ``name`` (none without ``policies.quality`` or a grader);
        its fallback model is called through ``inner`` (the layers inside the gate) and
        its own resilience."""
        config, factory = self.quality, self._grader_factory
        if config is None or factory is None:
            return []
        if self._grader is None:
            self._grader = factory(config)
        grade, check = self._grader
        target = config.fallback_model
        if target is None:
            return [QualityGate(config, grade, name=name, check=check)]
        made: list[tuple[BaseChatModel, WrappedChatModel]] = []

        def fallback_model(call: ModelCall) -> tuple[ModelCall, WrappedChatModel]:
            if not made:
                raw = registry.raw(target)
                layers = [*inner, *self.resilience.layers(target, registry)]
                made.append((raw, wrap_model(raw, layers, name=target)))
            raw, wrapped = made[0]
            other = call.for_model(target, raw)
            return other, wrapped.model_copy(update={"tool_binding": call.tools})

        async def fallback(call: ModelCall) -> ChatResult:
            other, model = fallback_model(call)
            kwargs: dict[str, Any] = other.kwargs
            return await model._agenerate(other.messages, other.stop, None, **kwargs)

        def sync_fallback(call: ModelCall) -> ChatResult:
            other, model = fallback_model(call)
            kwargs: dict[str, Any] = other.kwargs
            return model._generate(other.messages, other.stop, None, **kwargs)

        return [
            QualityGate(
                config,
                grade,
                name=name,
                fallback=fallback,
                sync_fallback=sync_fallback,
                check=check,
            )
        ]

    def for_policies(self, settings: Settings, policies: PoliciesConfig, scope: str) -> ModelChain:
        """The chain of ``policies`` (an assistant's), sharing this one's breakers; its
        cache entries are kept apart under ``scope``. Closed with this chain."""
        chain = _build(settings, policies, self.resilience, scope=scope, tokens=self.tokens)
        chain._owns_resilience = False
        if chain.cache is not None and self.cache is not None:
            chain.cache.quality = self.cache.quality
        chain._grader_factory = self._grader_factory
        self._derived.append(chain)
        return chain

    def set_quality(self, hook: QualityHook | None) -> None:
        """The quality hook of this chain's cache and of every assistant's (``min_quality``)."""
        for chain in (self, *self._derived):
            if chain.cache is not None:
                chain.cache.quality = hook

    def bind_keys(self, keys: KeyStore) -> None:
        """The key store, once storage is open: keys' own token limits come from it."""
        if self.tokens is not None and isinstance(self.tokens.key_policies, KeyPoliciesCache):
            self.tokens.key_policies.keys = keys

    async def aclose(self) -> None:
        for chain in self._derived:
            await chain.aclose()
        if self._owns_resilience:
            await self.resilience.aclose()
            if self.tokens is not None:
                await self.tokens.limiter.aclose()
        if self.cache is not None:
            await self.cache.store.aclose()


def _build(
    settings: Settings,
    policies: PoliciesConfig,
    resilience: Resilience,
    *,
    scope: str | None = None,
    tokens: TokenLimitLayer | None = None,
) -> ModelChain:
    outer: list[ModelLayer] = []
    cache = cache_layer(settings, policies.cache, scope=scope)
    if cache is not None:  # outside PII: a hit skips every other layer and the provider
        outer.append(cache)
    if policies.pii is not None:
        outer.append(PiiLayer(PiiPolicy.from_config(policies.pii)))
    if tokens is not None:  # after PII (the order of issue 15), before resilience
        outer.append(tokens)
    chain = ModelChain(resilience, outer)
    chain.cache = cache
    chain.tokens = tokens
    chain.quality = policies.quality
    return chain


def _token_layer(settings: Settings) -> TokenLimitLayer | None:
    """``policies.rate_limit``'s tokens per minute: per key and tenant, not per assistant."""
    limits = settings.policies.rate_limit
    tenant_tokens = limits.tenant.tokens_per_minute if limits and limits.tenant else None
    if limits is None or not (limits.tokens_per_minute or tenant_tokens):
        return None
    limiter = RateLimiter.from_settings(settings)
    assert limiter is not None
    return TokenLimitLayer(limiter, KeyPoliciesCache(settings.auth.cache_seconds))


def model_wrap(settings: Settings) -> ModelChain:
    return _build(
        settings,
        settings.policies,
        Resilience.from_settings(settings),
        tokens=_token_layer(settings),
    )
