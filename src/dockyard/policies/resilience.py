"""Retries, circuit breakers and fallbacks of the named models, built from ``models:``.

One ``Resilience`` per process holds the breaker store (Redis when
``DOCKYARD_REDIS_URL`` is set and some model has a ``breaker``, else this process's
memory) and, per model name, its ``ModelGuard``. ``layers(name, registry)`` is what the
model chain (``policies.chain``) puts around ``models.<name>``: a ``FallbackLayer`` when
the model has any of ``fallbacks``, ``retry`` or ``breaker``, nothing otherwise.
"""

from __future__ import annotations

import threading

from dockyard.extras import require_extra
from dockyard.policies.breaker import BreakerStore, CircuitBreaker, MemoryBreakerStore
from dockyard.policies.fallback import FallbackLayer
from dockyard.policies.guard import ModelGuard
from dockyard.policies.retry import RetryPolicy
from dockyard.providers.registry import ModelRegistry
from dockyard.providers.wrapper import ModelLayer
from dockyard.settings import ModelSpec, Settings


def breaker_key(spec: ModelSpec) -> str:
    """Provider + model (+ the server, when it is not the provider's own)."""
    return spec.model if spec.base_url is None else f"{spec.model}@{spec.base_url}"


def open_breaker_store(settings: Settings) -> BreakerStore:
    if settings.redis_url and any(spec.breaker for spec in settings.models.values()):
        require_extra("redis", "models.<name>.breaker with redis_url")
        from dockyard.policies.breaker_redis import RedisBreakerStore

        return RedisBreakerStore(settings.redis_url, settings.redis_prefix)
    return MemoryBreakerStore()


class Resilience:
    def __init__(self, store: BreakerStore) -> None:
        self.store = store
        self._guards: dict[str, ModelGuard] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Resilience:
        return cls(open_breaker_store(settings))

    async def aclose(self) -> None:
        close = getattr(self.store, "aclose", None)
        if close is not None:
            await close()

    def guard(self, registry: ModelRegistry, name: str) -> ModelGuard:
        """The breaker, retries and timeout of ``models.<name>`` (one per name)."""
        guard = self._guards.get(name)
        if guard is None:
            with self._lock:
                guard = self._guards.setdefault(name, self._build(registry, name))
        return guard

    def _build(self, registry: ModelRegistry, name: str) -> ModelGuard:
        spec = registry.spec(name)
        if spec is None:  # a model object given to the registry: no settings of its own
            return ModelGuard(name, RetryPolicy(None))
        breaker = None
        if spec.breaker is not None:
            breaker = CircuitBreaker(breaker_key(spec), spec.breaker, self.store, name=name)
        timeout = spec.retry.timeout_seconds if spec.retry else None
        return ModelGuard(name, RetryPolicy(spec.retry), breaker, timeout or spec.timeout)

    def layers(self, name: str, registry: ModelRegistry) -> list[ModelLayer]:
        spec = registry.spec(name)
        if spec is None or not (spec.fallbacks or spec.retry or spec.breaker):
            return []
        return [
            FallbackLayer(
                name,
                spec.fallbacks,
                guard_of=lambda other: self.guard(registry, other),
                raw_of=registry.raw,
                deadline_seconds=spec.retry.deadline_seconds if spec.retry else None,
            )
        ]
