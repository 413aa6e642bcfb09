"""``policies.cache``: the response cache, a layer of the model chain (policies/chain.py).

It sits outside PII (routing → cache → PII → ... → provider), so the key is over what the
graph sent and a hit skips every inner layer and the provider. The key is a sha256 over
canonical JSON of the model name, the messages, the bound tools / tool_choice /
response_format and the sampling parameters. Entries live in this process (an LRU) or,
with ``DOCKYARD_REDIS_URL``, in Redis (policies/cache_redis.py), shared by every process.

A hit answers with the stored message marked ``response_metadata["dockyard_cache"] =
"hit"`` and zero usage, so the usage tally counts it as a call costing 0; a stored miss is
marked ``"miss"``. A streamed hit still streams (word by word); a streamed miss is stored
once its stream completed.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Protocol

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    message_chunk_to_message,
    messages_from_dict,
    messages_to_dict,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from dockyard import events
from dockyard.errors import ConfigError
from dockyard.extras import require_extra
from dockyard.providers.offline.base import to_chunks
from dockyard.providers.wrapper import (
    AsyncNext,
    AsyncStreamNext,
    ModelCall,
    ModelLayer,
    SyncNext,
    SyncStreamNext,
)
from dockyard.settings import CacheConfig, Settings

CACHE_KEY = "cache"
"""The ``configurable`` key that, set to ``False``, makes a call bypass the cache."""
META_KEY = "dockyard_cache"

QualityHook = Callable[[Sequence[BaseMessage], AIMessage], float]
"""Scores an answer to ``messages``; the quality-gate policy supplies one."""

_ZERO_USAGE = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}


class CacheStore(Protocol):
    def get(self, key: str) -> str | None: ...
    def set(self, key: str, value: str, ttl: float) -> None: ...
    async def aget(self, key: str) -> str | None: ...
    async def aset(self, key: str, value: str, ttl: float) -> None: ...
    async def aclose(self) -> None: ...


class MemoryCacheStore:
    """This process's entries: the least recently used go first past ``max_entries``."""

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> str | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self.clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def set(self, key: str, value: str, ttl: float) -> None:
        with self._lock:
            self._entries[key] = (self.clock() + ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    async def aget(self, key: str) -> str | None:
        return self.get(key)

    async def aset(self, key: str, value: str, ttl: float) -> None:
        self.set(key, value, ttl)

    async def aclose(self) -> None:
        self._entries.clear()


def open_cache_store(settings: Settings, config: CacheConfig) -> CacheStore:
    if settings.redis_url:
        if "max_entries" in config.model_fields_set:
            raise ConfigError(
                "policies.cache.max_entries: bounds only the in-process cache, and with "
                "redis_url the cache is in Redis (entries go after ttl_seconds; bound its "
                "memory with Redis's maxmemory): remove max_entries"
            )
        require_extra("redis", "policies.cache with redis_url")
        from dockyard.policies.cache_redis import RedisCacheStore

        return RedisCacheStore(settings.redis_url, settings.redis_prefix)
    return MemoryCacheStore(config.max_entries)


# -- the key -------------------------------------------------------------------------------


def _message(m: BaseMessage) -> dict[str, Any]:
    return {
        "type": m.type,
        "content": m.content,
        "tool_calls": getattr(m, "tool_calls", None) or None,
        "tool_call_id": getattr(m, "tool_call_id", None),
        "name": m.name,
    }


def cache_key(call: ModelCall, scope: str | None = None) -> str:
    """sha256 over canonical JSON (sorted keys, no spaces) of what decides the answer:
    ``call.kwargs`` holds the bound tools, tool_choice, response_format and sampling.
    ``scope``: an assistant with policies of its own (its answers, PII-masked or not,
    are not another's)."""
    doc: dict[str, Any] = {
        "model": call.name,
        "messages": [_message(m) for m in call.messages],
        "kwargs": call.kwargs,
        "stop": call.stop,
    }
    if scope is not None:
        doc["scope"] = scope
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def temperature(call: ModelCall) -> float | None:
    """The call's temperature: the call's own, else the model's (None: the provider's
    default, which samples for OpenAI and Anthropic)."""
    value = call.kwargs.get("temperature", getattr(call.model, "temperature", None))
    return None if value is None else float(value)


# -- the layer ------------------------------------------------------------------------------


def _dump(message: AIMessage) -> str:
    return json.dumps(messages_to_dict([message])[0])


def _hit(value: str) -> AIMessage:
    (message,) = messages_from_dict([json.loads(value)])
    assert isinstance(message, AIMessage)
    # Nothing was sent to a provider: the tally counts a call of 0 tokens, costing 0. The
    # id is the call's own (LangChain gives one): LangGraph's add_messages would let a
    # hit with the stored answer's id replace an earlier message of the conversation.
    return message.model_copy(
        update={
            "id": None,
            "response_metadata": {**message.response_metadata, META_KEY: "hit"},
            "usage_metadata": dict(_ZERO_USAGE),
        }
    )


def _answer(result: ChatResult) -> AIMessage | None:
    if len(result.generations) != 1:
        return None
    message = result.generations[0].message
    return message if isinstance(message, AIMessage) else None


class CacheLayer(ModelLayer):
    def __init__(
        self,
        config: CacheConfig,
        store: CacheStore,
        quality: QualityHook | None = None,
        *,
        scope: str | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.scope = scope
        self.quality = quality
        """Set by the quality-gate policy; without one every answer may be stored."""

    def key(self, call: ModelCall) -> str | None:
        """The call's key, or None when the cache stays out of it."""
        configurable = call.config.get("configurable") or {}
        if configurable.get(CACHE_KEY) is False:
            return None
        if not self.config.force:
            t = temperature(call)
            if t is None or t > 0:
                return None
        return cache_key(call, self.scope)

    def _storable(self, call: ModelCall, message: AIMessage) -> bool:
        if self.config.min_quality is None:
            return True
        # Only answers whose score passed are kept: with no scorer yet, none has passed.
        if self.quality is None:
            return False
        return self.quality(call.messages, message) >= self.config.min_quality

    def _miss(self, call: ModelCall, result: ChatResult) -> tuple[str | None, ChatResult]:
        """What to store for ``result`` (None: nothing), and ``result`` marked a miss."""
        message = _answer(result)
        if message is None:
            return None, result
        value = _dump(message) if self._storable(call, message) else None
        message.response_metadata[META_KEY] = "miss"
        return value, result

    def _streamed(self, call: ModelCall, chunks: list[ChatGenerationChunk]) -> str | None:
        if not chunks:
            return None
        total = chunks[0].message
        for chunk in chunks[1:]:
            total = total + chunk.message
        message = message_chunk_to_message(total)
        if not isinstance(message, AIMessage) or not self._storable(call, message):
            return None
        return _dump(message)

    async def agenerate(self, call: ModelCall, call_next: AsyncNext) -> ChatResult:
        key = self.key(call)
        if key is None:
            return await call_next(call)
        found = await self.store.aget(key)
        _looked_up(found)
        if found is not None:
            return ChatResult(generations=[ChatGeneration(message=_hit(found))])
        value, result = self._miss(call, await call_next(call))
        if value is not None:
            await self.store.aset(key, value, self.config.ttl_seconds)
        return result

    def generate(self, call: ModelCall, call_next: SyncNext) -> ChatResult:
        key = self.key(call)
        if key is None:
            return call_next(call)
        found = self.store.get(key)
        _looked_up(found)
        if found is not None:
            return ChatResult(generations=[ChatGeneration(message=_hit(found))])
        value, result = self._miss(call, call_next(call))
        if value is not None:
            self.store.set(key, value, self.config.ttl_seconds)
        return result

    async def astream(  # type: ignore[override]
        self, call: ModelCall, call_next: AsyncStreamNext
    ) -> AsyncIterator[ChatGenerationChunk]:
        key = self.key(call)
        if key is None:
            async for chunk in call_next(call):
                yield chunk
            return
        found = await self.store.aget(key)
        _looked_up(found)
        if found is not None:
            for chunk in to_chunks(_hit(found)):
                yield chunk
            return
        chunks: list[ChatGenerationChunk] = []
        async for chunk in call_next(call):
            chunks.append(chunk)
            yield chunk
        value = self._streamed(call, chunks)  # reached only when the stream completed
        if value is not None:
            await self.store.aset(key, value, self.config.ttl_seconds)
        yield _miss_chunk()

    def stream(self, call: ModelCall, call_next: SyncStreamNext) -> Iterator[ChatGenerationChunk]:
        key = self.key(call)
        if key is None:
            yield from call_next(call)
            return
        found = self.store.get(key)
        _looked_up(found)
        if found is not None:
            yield from to_chunks(_hit(found))
            return
        chunks: list[ChatGenerationChunk] = []
        for chunk in call_next(call):
            chunks.append(chunk)
            yield chunk
        value = self._streamed(call, chunks)
        if value is not None:
            self.store.set(key, value, self.config.ttl_seconds)
        yield _miss_chunk()


def _looked_up(found: str | None) -> None:
    events.emit("cache", result="miss" if found is None else "hit")


def _miss_chunk() -> ChatGenerationChunk:
    # An empty chunk carrying only the mark: the stream's last chunk is not known early.
    return ChatGenerationChunk(
        message=AIMessageChunk(content="", response_metadata={META_KEY: "miss"})
    )


def cache_layer(
    settings: Settings, config: CacheConfig | None, *, scope: str | None = None
) -> CacheLayer | None:
    """The layer of ``config`` (``policies.cache``, or an assistant's); ``scope``: see
    ``cache_key``."""
    if config is None:
        return None
    return CacheLayer(config, open_cache_store(settings, config), scope=scope)
