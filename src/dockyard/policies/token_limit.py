"""Model tokens per minute (``policies.rate_limit.tokens_per_minute``) as a layer of the
model chain: before a call, its estimated tokens must fit the caller's (and its tenant's)
bucket, or the call is refused with 429 ``rate_limited``; after it, the tokens the provider
reports are charged, even past the limit (they were spent), so later calls wait.

Whose tokens: the run's tenant and key, from the call's config metadata (the run's
metadata carries them, ``dockyard.caller``), else the request's caller (a gateway call).
A key with a ``rate_limit`` of its own gets it through ``key_policies``, looked up by key
id (cached briefly by the caller of this module).

A synchronous call (a graph's sync node) is limited on the event loop that made the first
asynchronous one; before there is one, it passes unlimited (logged once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Mapping
from typing import Any, TypeVar

from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult

from dockyard import caller
from dockyard.policies.auth import KeyMemo
from dockyard.policies.input_limits import estimate_tokens
from dockyard.policies.rate_limit import Identity, RateLimiter
from dockyard.providers.wrapper import (
    AsyncNext,
    AsyncStreamNext,
    ModelCall,
    ModelLayer,
    SyncNext,
    SyncStreamNext,
)
from dockyard.settings import RateLimits
from dockyard.storage.base import KeyStore

log = logging.getLogger("dockyard.policies")
T = TypeVar("T")

KeyPolicies = Callable[[str], Awaitable[Mapping[str, Any] | None]]


def estimate_call(call: ModelCall) -> int:
    """Tokens a call will likely use: its messages' text, and what it may answer."""
    text = "".join(_text(m) for m in call.messages)
    answer = call.kwargs.get("max_tokens") or call.kwargs.get("max_completion_tokens") or 0
    return max(1, estimate_tokens(text) + int(answer))


def _text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(
        part if isinstance(part, str) else str(part.get("text", ""))
        for part in content
        if isinstance(part, str | dict)
    )


def used_tokens(result: ChatResult) -> int:
    total = 0
    for gen in result.generations:
        usage = getattr(getattr(gen, "message", None), "usage_metadata", None)
        if usage:
            total += int(usage.get("input_tokens", 0)) + int(usage.get("output_tokens", 0))
    return total


class KeyPoliciesCache:
    """A key's own policies by key id, read from the key store (set once storage is open)
    and kept ``ttl`` seconds."""

    def __init__(self, ttl: float) -> None:
        self.keys: KeyStore | None = None
        # At least a second: a model call's lookup is per call, not per request.
        self._memo: KeyMemo[Mapping[str, Any] | None] = KeyMemo(max(ttl, 1.0))

    async def __call__(self, key_id: str) -> Mapping[str, Any] | None:
        return await self._memo.get(key_id, lambda: self._load(key_id))

    async def _load(self, key_id: str) -> Mapping[str, Any] | None:
        row = await self.keys.get(key_id) if self.keys is not None else None
        return row["policies"] if row is not None else None


class TokenLimitLayer(ModelLayer):
    def __init__(self, limiter: RateLimiter, key_policies: KeyPolicies | None = None) -> None:
        self.limiter = limiter
        self.key_policies = key_policies
        self._loop: asyncio.AbstractEventLoop | None = None
        self._warned = False

    async def identity(self, call: ModelCall) -> Identity | None:
        tenant, key_id = caller.ids(call.config.get("metadata"))
        who = caller.current()
        if key_id is None and who is not None:
            tenant, key_id = who.tenant, who.key_id
        if key_id is None:
            return None  # an open server's anonymous call: no key to count against
        own: Mapping[str, Any] | None = None
        if who is not None and who.key_id == key_id:
            own = who.policies
        elif self.key_policies is not None:
            own = await self.key_policies(key_id)
        limits = (own or {}).get("rate_limit")
        return Identity.of_key(
            key_id, tenant, RateLimits.model_validate(limits) if limits else None
        )

    async def _before(self, call: ModelCall) -> Identity | None:
        self._loop = asyncio.get_running_loop()
        who = await self.identity(call)
        if who is not None:
            await self.limiter.check_tokens(who, estimate_call(call))
        return who

    async def _after(self, who: Identity | None, tokens: int) -> None:
        if who is not None and tokens:
            await self.limiter.consume_tokens(who, tokens)

    async def agenerate(self, call: ModelCall, call_next: AsyncNext) -> ChatResult:
        who = await self._before(call)
        result = await call_next(call)
        await self._after(who, used_tokens(result))
        return result

    async def astream(  # type: ignore[override]
        self, call: ModelCall, call_next: AsyncStreamNext
    ) -> AsyncIterator[ChatGenerationChunk]:
        who = await self._before(call)
        tokens = 0
        try:
            async for chunk in call_next(call):
                usage = getattr(chunk.message, "usage_metadata", None)
                if usage:
                    tokens += int(usage.get("input_tokens", 0)) + int(usage.get("output_tokens", 0))
                yield chunk
        finally:
            await self._after(who, tokens)

    def _sync(self, coro: Coroutine[Any, Any, T]) -> T | None:
        loop = self._loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        # On the loop's own thread a wait for the loop would never end.
        if loop is None or loop.is_closed() or running is loop:
            coro.close()
            if not self._warned:
                self._warned = True
                log.warning("tokens_per_minute: a synchronous model call passed unlimited")
            return None
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def generate(self, call: ModelCall, call_next: SyncNext) -> ChatResult:
        who = self._sync(self._before_sync(call))
        result = call_next(call)
        self._sync(self._after(who, used_tokens(result)))
        return result

    async def _before_sync(self, call: ModelCall) -> Identity | None:
        who = await self.identity(call)
        if who is not None:
            await self.limiter.check_tokens(who, estimate_call(call))
        return who

    def stream(self, call: ModelCall, call_next: SyncStreamNext) -> Iterator[ChatGenerationChunk]:
        who = self._sync(self._before_sync(call))
        tokens = 0
        try:
            for chunk in call_next(call):
                usage = getattr(chunk.message, "usage_metadata", None)
                if usage:
                    tokens += int(usage.get("input_tokens", 0)) + int(usage.get("output_tokens", 0))
                yield chunk
        finally:
            self._sync(self._after(who, tokens))
