"""Response cache entries in Redis, shared by every process (``DOCKYARD_REDIS_URL``).

One string per entry (``<redis_prefix>:cache:<sha256>``), the answer as LangChain's
message dict in JSON, set with ``SET EX`` so Redis forgets it after the TTL. Imported
only when Redis is configured.
"""

from __future__ import annotations

import asyncio
import math
import weakref

import redis
import redis.asyncio


class RedisCacheStore:
    """One synchronous client (model calls made from threads; it connects on first use)
    and one asyncio client per event loop, since its connections belong to their loop."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        self.client = redis.Redis.from_url(url, socket_timeout=2, protocol=2)
        self._per_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, redis.asyncio.Redis
        ] = weakref.WeakKeyDictionary()

    def _key(self, key: str) -> str:
        return f"{self.prefix}:cache:{key}"

    def aclient(self) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        found = self._per_loop.get(loop)
        if found is None:
            found = redis.asyncio.Redis.from_url(self.url, socket_timeout=2, protocol=2)
            self._per_loop[loop] = found
        return found

    def get(self, key: str) -> str | None:
        return _text(self.client.get(self._key(key)))

    def set(self, key: str, value: str, ttl: float) -> None:
        self.client.set(self._key(key), value, ex=_seconds(ttl))

    async def aget(self, key: str) -> str | None:
        return _text(await self.aclient().get(self._key(key)))

    async def aset(self, key: str, value: str, ttl: float) -> None:
        await self.aclient().set(self._key(key), value, ex=_seconds(ttl))

    async def aclose(self) -> None:
        """Close the synchronous client and this loop's (the others close with their loops)."""
        found = self._per_loop.pop(asyncio.get_running_loop(), None)
        if found is not None:
            await found.aclose()
        self.client.close()


def _seconds(ttl: float) -> int:
    return max(1, math.ceil(ttl))


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
